"""Bad input gets a one-line MetricflowError, and the CLI exits 2 without a traceback."""

import json
import subprocess
import sys

import numpy as np
import pytest

from metricflow import Manifold, MetricflowError, SampleConfig, manifold, sample_points
from metricflow import errors


@pytest.mark.parametrize("n", [0, -5, 2.5, "100", True, float("nan"), 10**12])
def test_bad_point_counts(n):
    with pytest.raises(MetricflowError, match="points must"):
        SampleConfig(manifold("quintic"), n)


def test_integral_float_count_is_accepted():
    assert SampleConfig(manifold("quintic"), 1e3).n_points == 1000


def test_unknown_manifold_and_singular_psi():
    with pytest.raises(MetricflowError, match="unknown manifold 'sextic'"):
        manifold("sextic")
    for d in (3, 4, 5):
        root = np.exp(2j * np.pi / d)  # psi^d = 1
        with pytest.raises(MetricflowError, match="singular locus"):
            Manifold(d, root)
    with pytest.raises(MetricflowError, match="psi must"):
        Manifold(5, "abc")
    Manifold(5, 1.0 + 1e-3)  # near, but off, the conifold


@pytest.mark.parametrize("d", [3, 4, 5])
def test_psi_near_a_root_of_unity_is_refused_by_its_distance(d):
    for k in range(d):
        root = np.exp(2j * np.pi * k / d)
        for offset in (2.4e-6, 9e-6j, -5e-6 + 5e-6j):  # |psi^d - 1| up to 5e-5: passed the old check
            with pytest.raises(MetricflowError, match=r"psi must be at least 1e-05 from every root of psi\^\d = 1"):
                Manifold(d, root + offset)
        Manifold(d, root * (1 + 2e-5))  # 2e-5 away: allowed
    with pytest.raises(MetricflowError, match="singular locus"):
        Manifold(5, 0.30902 + 0.95106j)  # the root e^(2 pi i / 5) written with 5 decimals


def test_one_train_or_test_point_is_refused_with_the_reason():
    from metricflow.flows.flow import FlowConfig
    from metricflow.studies.generalisation import NoiseConfig
    from metricflow.studies.feature_learning import TrainedKernelConfig
    from metricflow.studies.tuning import TuneConfig

    why = "must be at least 2, got 1 \\(one point has no spread, so sigma and its standard error are not defined\\)"
    for make in (lambda: FlowConfig(kernel="delta", n_train=1), lambda: FlowConfig(kernel="delta", n_train=10, n_test=1),
                 lambda: NoiseConfig(n_train=1), lambda: TrainedKernelConfig(n_train=1),
                 lambda: TrainedKernelConfig(n_test=1), lambda: TuneConfig(n_test=1),
                 lambda: SampleConfig(manifold("quintic"), 1)):
        with pytest.raises(MetricflowError, match=why):
            make()
    assert FlowConfig(kernel="delta", n_train=2, n_test=2).n_test == 2


def test_cli_integers_are_exact():
    from metricflow.parse import exact_int as _exact_int

    assert _exact_int("9007199254740993") == 9007199254740993  # 2**53 + 1: float would give ...992
    assert _exact_int(str(2**63 - 1)) == 2**63 - 1
    assert _exact_int("1e5") == 100_000 and _exact_int("2.5e3") == 2500 and _exact_int("1_000") == 1000
    for text in ("1.5", "1e-1", "nan", "inf", "", "0x10", str(2**63), "-" + str(2**63)):
        with pytest.raises(ValueError):
            _exact_int(text)
    out = _cli("sample", "--points", "1e2", "--manifold", "cubic", "--seed", "9007199254740993", "--no-cache", "--json")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["seed"] == 9007199254740993


def test_memory_is_refused_before_allocating(monkeypatch):
    monkeypatch.setattr(errors, "available_memory_bytes", lambda: 10 * 2**20)
    with pytest.raises(MetricflowError, match=r"needs about .* GiB but only .* free; use fewer points"):
        sample_points(SampleConfig(manifold("quintic"), 1_000_000))


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "metricflow", *args], capture_output=True, text=True, timeout=120)


def test_cli_sample_json():
    out = _cli("sample", "--points", "2000", "--seed", "3", "--json")
    assert out.returncode == 0, out.stderr
    r = json.loads(out.stdout)
    assert {"points", "sigma_fs", "sigma_fs_se", "sigma_fs_self", "kappa", "kappa_se", "seconds"} <= r.keys()
    assert r["points"] == 2000
    pts = sample_points(SampleConfig(manifold("quintic"), 2000, 3))
    w = pts.weights
    # self-normalised: kappa = 1/mean(w), sigma = mean|w - mean w| / mean w
    assert r["sigma_fs_self"] == pytest.approx(np.mean(np.abs(w - w.mean())) / w.mean(), rel=1e-12)
    assert r["kappa_sample"] == pytest.approx(1 / w.mean(), rel=1e-12)
    # reference kappa: the closed form, eta = 1 / (kappa w)
    k = manifold("quintic").exact_kappa()
    assert r["kappa"] == k and r["kappa_se"] == 0.0
    assert r["sigma_fs"] == pytest.approx(np.sum(np.abs(w - 1 / k)) / np.sum(w), rel=1e-12)


def test_cli_human_summary():
    out = _cli("sample", "--points", "500", "--manifold", "cubic", "--psi", "0.3+0.1j")
    assert out.returncode == 0, out.stderr
    assert "sigma_FS" in out.stdout and "cubic" in out.stdout


@pytest.mark.parametrize(
    "args,message",
    [
        (["--points", "0"], "points must be at least 2"),
        (["--points", "-4"], "points must be at least 2"),
        (["--points", "1"], "sigma and its standard error are not defined"),
        (["--points", "100", "--seed", str(2**63)], "at most 2**63 - 1"),
        (["--points", "100", "--seed", "1e19"], "at most 2**63 - 1"),
        (["--points", "100", "--psi", "0.309019+0.951057j"], "at least 1e-05 from every root"),
        (["--points", "1.5"], "expected an integer"),
        (["--points", "lots"], "expected an integer"),
        (["--points", "1e15"], "points must be at most"),
        (["--points", "100", "--manifold", "sextic"], "unknown manifold"),
        (["--points", "100", "--psi", "1"], "singular locus"),
        (["--points", "100", "--manifold", "cubic", "--psi=-0.5+0.8660254037844386j"], "singular locus"),
        (["--points", "100", "--psi", "x"], "psi must be a complex number"),
    ],
)
def test_cli_bad_input_exits_2_without_traceback(args, message):
    out = _cli("sample", *args)
    assert out.returncode == 2
    assert message in out.stderr
    assert out.stderr.count("\n") == 1, out.stderr  # one line, argparse's errors too
    assert "Traceback" not in out.stderr
    assert out.stdout == ""
