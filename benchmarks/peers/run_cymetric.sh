#!/usr/bin/env bash
# Side by side with cymetric, in one command.
#
#   bash benchmarks/peers/run_cymetric.sh [CYMETRIC_CHECKOUT] [--mlgeometry] [-- OPTIONS]
#
# Builds cymetric in its own virtual environment (outside the project's requirements), then
# trains cymetric's MultFSModel and our metric model epoch by epoch, taking turns, and prints
# the epoch times, sigma in both conventions and peak memory (benchmarks/peers/README.md).
# --mlgeometry adds MLGeometry's JAX port (mlgeometry-jax, in a venv of its own) as a second
# peer. OPTIONS go to compare.py: --points N (default 100000), --epochs E (2), --seed S (0).
#
# Environment:
#   CYMETRIC_SRC     a checkout of github.com/pythoncymetric/cymetric (the argument wins);
#                    unset: pip installs it from the repository's git URL. (PyPI's `cymetric`
#                    is an unrelated package, a metric calculator for the Cyclus simulator.)
#   CYMETRIC_GIT     the git URL used then (default below).
#   PEERS_HOME       where the venvs and the run files go (default ~/.cache/metricflow-peers).
#   PEER_PYTHON      the interpreter the venvs are made from (default python3.11, else python3).
#   PYTHON           the project's interpreter (default python3), which runs our model.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"

src="${CYMETRIC_SRC:-}"
mlgeometry=0
while [[ $# -gt 0 && "$1" != "--" ]]; do
    case "$1" in
        --mlgeometry) mlgeometry=1 ;;
        -*) echo "error: unknown option $1 (options for compare.py go after --)" >&2; exit 2 ;;
        *) src="$1" ;;
    esac
    shift
done
[[ "${1:-}" == "--" ]] && shift

git_url="${CYMETRIC_GIT:-git+https://github.com/pythoncymetric/cymetric.git}"
home="${PEERS_HOME:-$HOME/.cache/metricflow-peers}"
project_python="${PYTHON:-python3}"
peer_python="${PEER_PYTHON:-$(command -v python3.11 || command -v python3)}"

# The versions tried with cymetric commit cdddebc (it needs TensorFlow < 2.15, i.e. Keras 2).
cymetric_pins=(tensorflow-cpu==2.14.1 numpy==1.26.4 scipy==1.11.4 sympy==1.12 joblib==1.3.2 pyyaml==6.0.1)
mlgeometry_pins=(mlgeometry-jax==2.0.0)

if [[ -n "$src" ]]; then
    [[ -f "$src/setup.py" && -d "$src/cymetric" ]] || { echo "error: $src is not a cymetric checkout (no setup.py and cymetric/ in it)" >&2; exit 2; }
    src="$(cd "$src" && pwd)"
    cymetric_from="$src@$(git -C "$src" rev-parse --short HEAD 2>/dev/null || echo no-git)"
else
    cymetric_from="$git_url"
fi

# build_venv NAME STAMP INSTALL-COMMAND...: a fresh venv at $home/NAME-venv unless its stamp matches
build_venv() {
    local name="$1" want="$2"
    shift 2
    local venv="$home/$name-venv" log="$home/$name-pip.log"
    if [[ -x "$venv/bin/python" && "$(cat "$venv/.metricflow-peers" 2>/dev/null)" == "$want" ]]; then
        return
    fi
    echo "building $name's venv in $venv (log: $log)"
    rm -rf "$venv"
    mkdir -p "$home"
    "$peer_python" -m venv "$venv"
    if ! "$@" > "$log" 2>&1; then
        tail -n 30 "$log" >&2
        echo "error: installing $name's environment failed; the whole log is $log" >&2
        exit 1
    fi
    echo "$want" > "$venv/.metricflow-peers"
}

install_cymetric() {
    local pip=("$home/cymetric-venv/bin/python" -m pip install --disable-pip-version-check)
    "${pip[@]}" "${cymetric_pins[@]}"
    # --no-deps: its requirements name `tensorflow` (not -cpu) and wolframclient (Mathematica only)
    if [[ -n "$src" ]]; then
        local build
        build="$(mktemp -d)"  # a copy, so that pip's build files stay out of the checkout
        cp -r "$src/." "$build/"
        "${pip[@]}" --no-deps "$build"
        rm -rf "$build"
    else
        "${pip[@]}" --no-deps "$git_url"
    fi
}

build_venv cymetric "${cymetric_pins[*]} | $cymetric_from" install_cymetric
args=(--cymetric-python "$home/cymetric-venv/bin/python")
"$home/cymetric-venv/bin/python" -c "import tensorflow as tf, cymetric.models.tfmodels; print('cymetric venv: tensorflow', tf.__version__)" 2>/dev/null

if [[ $mlgeometry == 1 ]]; then
    build_venv mlgeometry "${mlgeometry_pins[*]}" \
        "$home/mlgeometry-venv/bin/python" -m pip install --disable-pip-version-check "${mlgeometry_pins[@]}"
    args+=(--mlgeometry-python "$home/mlgeometry-venv/bin/python")
fi

cd "$root"
exec "$project_python" "$here/compare.py" "${args[@]}" --workdir "$home/runs" "$@"
