#!/usr/bin/env bash
# cymetric's JAX backend beside ours, in one command.
#
#   bash benchmarks/peers/run_cymetric_jax.sh [CYMETRIC_CHECKOUT] [-- OPTIONS]
#
# Builds ruehlef/cymetric (pinned commit below) with its JAX backend in a venv of its own,
# then trains its MultFSModel and PhiFSModel, as shipped and with the compiled train step kept,
# beside our metric and phi models, epoch by epoch, taking turns, and prints the epoch times,
# sigma in both conventions, sigma at equal training time and peak memory
# (benchmarks/peers/README.md). OPTIONS go to compare_jax.py: --points N (default 100000),
# --epochs E (2), --seed S (0), --models metric,phi (both).
#
# Environment:
#   CYMETRIC_JAX_SRC   a checkout of github.com/ruehlef/cymetric (the argument wins); unset:
#                      the pinned commit is cloned from CYMETRIC_JAX_GIT into PEERS_HOME.
#   CYMETRIC_JAX_GIT   the repository cloned then (default below).
#   CYMETRIC_JAX_VENV  the peer's venv (default benchmarks/peers/.venv-cymetric-jax, git-ignored).
#   PEERS_HOME         the clone, the pip log and the run folders (default ~/.cache/metricflow-peers).
#   PEER_PYTHON        the interpreter the venv is made from (default python3.11, else python3).
#   PYTHON             the project's interpreter (default python3), which runs our models.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"

pinned=40efebad8d48455e2232b7efb4f6f1adb546648d
src="${CYMETRIC_JAX_SRC:-}"
while [[ $# -gt 0 && "$1" != "--" ]]; do
    case "$1" in
        -*) echo "error: unknown option $1 (options for compare_jax.py go after --)" >&2; exit 2 ;;
        *) src="$1" ;;
    esac
    shift
done
[[ "${1:-}" == "--" ]] && shift

git_url="${CYMETRIC_JAX_GIT:-https://github.com/ruehlef/cymetric.git}"
home="${PEERS_HOME:-$HOME/.cache/metricflow-peers}"
venv="${CYMETRIC_JAX_VENV:-$here/.venv-cymetric-jax}"
project_python="${PYTHON:-python3}"
peer_python="${PEER_PYTHON:-$(command -v python3.11 || command -v python3)}"

# The JAX of the project (requirements.txt) and the Equinox and optax tried with it. The rest
# comes from cymetric's own requirements-core.txt and requirements-jax.txt; cymetric itself is
# installed with --no-deps, since its setup.py adds torch and TensorFlow on Python 3.11.
pins=(jax==0.5.3 jaxlib==0.5.3 equinox==0.13.8 optax==0.2.8)

if [[ -z "$src" ]]; then
    src="$home/cymetric-jax-src"
    if [[ ! -d "$src/.git" ]]; then
        echo "cloning $git_url into $src"
        mkdir -p "$home"
        git clone --quiet "$git_url" "$src"
    fi
    git -C "$src" checkout --quiet "$pinned"
fi
[[ -f "$src/setup.py" && -f "$src/cymetric/jax/models/helper.py" ]] || {
    echo "error: $src is not a checkout of ruehlef/cymetric with a JAX backend (no setup.py and cymetric/jax/ in it)" >&2; exit 2; }
src="$(cd "$src" && pwd)"
commit="$(git -C "$src" rev-parse HEAD 2>/dev/null || echo no-git)"
[[ "$commit" == "$pinned" ]] || echo "warning: $src is at $commit, not the pinned $pinned" >&2

want="${pins[*]} | $src@$commit"
log="$home/cymetric-jax-pip.log"
if [[ ! -x "$venv/bin/python" || "$(cat "$venv/.metricflow-peers" 2>/dev/null)" != "$want" ]]; then
    echo "building cymetric's JAX venv in $venv (log: $log)"
    rm -rf "$venv"
    mkdir -p "$home"
    "$peer_python" -m venv "$venv"
    build="$(mktemp -d)"  # a copy, so that pip's build files stay out of the checkout
    cp -r "$src/." "$build/"
    pip=("$venv/bin/python" -m pip install --disable-pip-version-check)
    if ! { "${pip[@]}" -r "$build/requirements-core.txt" -r "$build/requirements-jax.txt" "${pins[@]}" \
           && "${pip[@]}" --no-deps "$build"; } > "$log" 2>&1; then
        tail -n 30 "$log" >&2
        echo "error: installing cymetric's JAX environment failed; the whole log is $log" >&2
        rm -rf "$build"
        exit 1
    fi
    rm -rf "$build"
    echo "$want" > "$venv/.metricflow-peers"
fi
CYMETRIC_FRAMEWORK=jax "$venv/bin/python" -c "import cymetric, jax, equinox; assert cymetric.PREFERRED_FRAMEWORK == 'jax'; print('cymetric venv: backend', cymetric.PREFERRED_FRAMEWORK, '| jax', jax.__version__, '| equinox', equinox.__version__)"

cd "$root"
exec "$project_python" "$here/compare_jax.py" --peer-python "$venv/bin/python" --workdir "$home/runs-jax" "$@"
