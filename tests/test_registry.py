"""The kernel registry: every kernel is one spec, and the CLI flags and tuning's bounds come from
the registry alone (a toy kernel registered here shows up in both and runs a flow); each spec's
matrices are its kernel functions'; the cost estimates are those of the flat config they replaced."""

import ast
import json
import math
from dataclasses import dataclass, replace
from pathlib import Path
from typing import ClassVar

import numpy as np
import pytest

import metricflow.cli.kernel_flags as kernel_flags
import metricflow.studies.tuning as tuning
from metricflow.cli.main import build_parser, main
from metricflow.constraints import Positive
from metricflow.errors import MetricflowError
from metricflow.estimates import Estimate
from metricflow.flows.flow import TABLE1, FlowConfig, estimate_flow, flow_from_options, flow_kernels, run_flow, sample_in_chart
from metricflow.geometry.distance import FSNeighbours
from metricflow.geometry.manifolds import Manifold
from metricflow.kernels import (
    KERNELS, CosNet, Delta, Gaussian, KernelSpec, ReluNTK, Search, cosnet_empirical_kernel, cosnet_init, cosnet_kernel,
    delta_kernel, describe_kernels, gaussian_kernel, gaussian_kernel_sparse, kernel_options, kernel_spec, relu_ntk,
    stream_seed,
)
from metricflow.studies.tuning import TuneConfig, search_space


@dataclass(frozen=True)
class Constant(KernelSpec):
    """A toy kernel: K(x, x') = weight for every pair."""

    weight: float = 1.0

    name: ClassVar[str] = "constant"
    label: ClassVar[str] = "constant"
    table1: ClassVar[dict] = {"n_train": 40, "lr": 0.2}
    constraints: ClassVar[dict] = {"weight": Positive("weight")}
    search: ClassVar[dict] = {"weight": Search("log", 0.1, 10.0)}
    labels: ClassVar[dict] = {"weight": "w"}
    help: ClassVar[dict] = {"weight": "the constant value"}

    def matrices(self, train, test, seed):
        n = len(train)
        return np.full((n, n), self.weight), np.full((len(test), n), self.weight), 0


@pytest.fixture
def toy(monkeypatch):
    monkeypatch.setitem(KERNELS, "constant", Constant)
    return Constant


def _flow_parser(argv):
    return build_parser().parse_args(["flow", *argv])


def _kernel_action(command: str):
    sub = next(a for a in build_parser()._actions if a.dest == "command")
    return next(a for a in sub.choices[command]._actions if a.dest == "kernel")


def _string_constants(module) -> set:
    tree = ast.parse(Path(module.__file__).read_text())
    return {node.value for node in ast.walk(tree) if isinstance(node, ast.Constant) and isinstance(node.value, str)}


def test_every_kernel_is_in_the_cli_and_tuning_without_being_named_there():
    for command in ("flow", "tune"):
        action = _kernel_action(command)
        assert all(name in action.metavar and name in action.help for name in KERNELS)
    assert kernel_flags.kernel_choices() == list(KERNELS)
    for name in KERNELS:
        assert name in tuning.DEFAULT_BOUNDS and name in TABLE1
        assert [b.name for b in TuneConfig(kernel=name).bounds] == list(search_space(name))
    for module in (kernel_flags, tuning):
        assert not _string_constants(module) & set(KERNELS), module.__name__
    # every option of every kernel is a flow flag
    flags = {a.dest for a in next(a for a in build_parser()._actions if a.dest == "command").choices["flow"]._actions}
    assert {o["name"] for k in KERNELS for o in kernel_options(k)} <= flags


def test_a_registered_toy_kernel_gets_flags_bounds_and_runs(toy, capsys):
    args = _flow_parser(["--kernel", "constant", "--weight", "2.5"])
    assert kernel_flags.kernel_from_args(args) == Constant(weight=2.5)
    assert "constant" in _kernel_action("flow").metavar
    with pytest.raises(MetricflowError, match="option radius=0.3 does not apply to the constant kernel"):
        kernel_flags.kernel_from_args(_flow_parser(["--kernel", "constant", "--radius", "0.3"]))
    # tuning: the toy's search range, and its option goes into the flow's spec
    tune = TuneConfig(kernel="constant")
    assert [(b.name, b.low, b.high) for b in tune.bounds] == [("n_train", 250, 2500), ("lr", 0.01, 3.0), ("weight", 0.1, 10.0)]
    assert tune.dimensions()[-1].scale == "log"
    assert tune.flow_config({"n_train": 30, "lr": 0.1, "weight": 3.0}, seed=1).kernel == Constant(weight=3.0)
    args = build_parser().parse_args(["tune", "--kernel", "constant", "--iterations", "1", "--weight", "1,3"])
    assert kernel_flags.search_bounds_from_args(args, lambda text, flag: tuple(float(t) for t in text.split(","))) == [
        ("weight", 1.0, 3.0)]
    # a tiny flow, n_train and lr from the toy's table 1. With the normalised constant kernel and
    # the log loss every point takes c = sum w ln eta / sum w over the train points:
    # ln eta <- ln eta - lr c on train and test points alike
    config = FlowConfig(kernel="constant", n_test=10, steps=1, seed=4)
    assert (config.kernel, config.n_train, config.lr) == (Constant(), 40, 0.2)
    result = run_flow(config)
    train, chart, _ = sample_in_chart(config.manifold, 40, 4, 0)
    test, _, _ = sample_in_chart(config.manifold, 10, 4, 1, chart)
    eta = lambda p: np.linalg.det(p.g_fs).real / p.omega_sq / result.kappa_ref  # noqa: E731
    c = np.sum(train.weights * np.log(eta(train))) / np.sum(train.weights)
    for p, sigma in ((train, result.train_sigma), (test, result.test_sigma)):
        moved = eta(p) * np.exp(-config.lr * c)
        assert sigma[1] == pytest.approx(np.sum(p.weights * np.abs(1 - moved)) / np.sum(p.weights), rel=1e-10)
    assert main(["flow", "--kernel", "constant", "--weight", "2", "--train", "30", "--test", "10", "--steps", "1",
                 "--json", "--no-cache"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["config"]["kernel"] == {"name": "constant", "weight": 2.0} and out["steps_done"] == 1


def test_specs_are_validated_and_described():
    assert kernel_spec("gaussian", radius=0.3, sigma=None) == Gaussian(radius=0.3)
    with pytest.raises(MetricflowError, match="cosnet width must be at most"):
        CosNet(width=10**8)
    with pytest.raises(MetricflowError, match="sigma_w must be a positive"):
        ReluNTK(sigma_w=0.0)
    with pytest.raises(TypeError, match="kernel must be a name"):
        FlowConfig(kernel=3)
    with pytest.raises(MetricflowError, match="unknown kernel 'rbf'"):
        kernel_spec("rbf")
    table = describe_kernels()
    assert list(table) == list(KERNELS)
    radius = next(o for o in table["gaussian"]["options"] if o["name"] == "radius")
    assert (radius["type"], radius["optional"], radius["default"], radius["bounds"]["below"]) == ("float", True, None, math.pi / 2)
    sigma_b = next(o for o in table["relu-ntk"]["options"] if o["name"] == "sigma_b")
    assert (sigma_b["table1"], sigma_b["label"], sigma_b["bounds"]["low"]) == (80.52, "σ_b", 0.0)
    for name, cls in KERNELS.items():  # the table 1 values are the specs' defaults
        spec = cls()
        assert all(getattr(spec, k) == v for k, v in cls.table1.items() if k not in ("n_train", "lr"))
        assert FlowConfig(kernel=name).to_dict()["kernel"] == {"name": name, **spec.options()}


@pytest.fixture(scope="module")
def points():
    train, chart, _ = sample_in_chart(Manifold(), 70, 3, 0)
    test, _, _ = sample_in_chart(Manifold(), 30, 3, 1, chart)
    return train, test


def _dense(k):
    return k if isinstance(k, np.ndarray) else k.toarray()


def test_spec_matrices_are_the_kernel_functions(points):
    train, test = points
    nbrs = FSNeighbours(train.z)
    xt, xq = train.features, test.features
    params = cosnet_init(stream_seed(9, 2, 0), 128, xt.shape[1], 3.0)
    cases = [
        (Gaussian(sigma=0.2), gaussian_kernel(train.z, train.z, 0.2), gaussian_kernel(test.z, train.z, 0.2)),
        (Gaussian(sigma=0.2, squared=True), gaussian_kernel(train.z, train.z, 0.2, True),
         gaussian_kernel(test.z, train.z, 0.2, True)),
        (Gaussian(sigma=0.2, radius=0.3), gaussian_kernel_sparse(train.z, nbrs, 0.2, 0.3),
         gaussian_kernel_sparse(test.z, nbrs, 0.2, 0.3)),
        (Delta(), delta_kernel(train.z, nbrs, same=True), delta_kernel(test.z, nbrs)),
        (CosNet(sigma_w=3.0), cosnet_kernel(xt, xt, 3.0), cosnet_kernel(xq, xt, 3.0)),
        (CosNet(sigma_w=3.0, width=128), cosnet_empirical_kernel(params, xt, xt, 3.0),
         cosnet_empirical_kernel(params, xq, xt, 3.0)),
        (ReluNTK(depth=2, sigma_w=1.5, sigma_b=0.3), relu_ntk(xt, xt, 2, 1.5, 0.3), relu_ntk(xq, xt, 2, 1.5, 0.3)),
    ]
    for spec, k_train, k_test in cases:
        got_train, got_test, isolated = spec.matrices(train, test, seed=9)
        assert type(got_train) is type(k_train) and got_test.shape == (30, 70)
        np.testing.assert_allclose(_dense(got_train), _dense(k_train), rtol=0, atol=1e-12)
        np.testing.assert_allclose(_dense(got_test), _dense(k_test), rtol=0, atol=1e-12)
        assert spec.dense() == isinstance(k_train, np.ndarray)
        config = FlowConfig(kernel=spec, n_train=70, n_test=30, seed=9)
        via_flow = flow_kernels(config, train, test)
        np.testing.assert_array_equal(_dense(via_flow[1]), _dense(got_test))
        if spec == Gaussian(sigma=0.2, radius=0.3):
            assert isolated == int(np.sum(np.diff(k_test.indptr) == 0))
        else:
            assert isolated == 0


@pytest.mark.parametrize("kwargs, expected", [
    # estimate_flow of the flat FlowConfig these replaced (measured before the registry)
    (dict(kernel="relu-ntk"), Estimate(45.5, 2574630400)),
    (dict(kernel="gaussian"), Estimate(10.0, 1216339200)),
    (dict(kernel="gaussian", radius=0.3, n_train=4000), Estimate(5.8066285, 1346011424)),
    (dict(kernel="delta", n_train=10**5), Estimate(96.08000000000001, 2135859200)),
    (dict(kernel="cosnet"), Estimate(10.0, 1216339200)),
    (dict(kernel="cosnet", width=1000), Estimate(6.75, 1096339200)),
    (dict(kernel="delta", coordinates="transform"), Estimate(2.4608, 689715200)),
])
def test_estimates_are_unchanged(kwargs, expected):
    assert estimate_flow(flow_from_options(**kwargs)) == expected


def test_replace_keeps_the_spec():
    c = flow_from_options(kernel="gaussian", radius=0.3, n_train=100)
    assert replace(c, n_test=7).kernel == Gaussian(radius=0.3)
    assert str(c.kernel) == "gaussian"


def _kernel_flow_page():
    from apptest import ROOT, TIMEOUT
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(ROOT / "pages" / "2_Kernel_flow.py"), default_timeout=TIMEOUT)
    at.run()
    assert not at.exception, at.exception
    return at


def test_every_kernel_is_on_the_kernel_flow_page_without_being_named_there(toy, cache_dir):
    """The page's kernel choices and each kernel's option widgets come from the registry; a
    toy kernel registered here gets its widget, with its table 1 default, and its spec."""
    page = Path(__file__).resolve().parent.parent / "pages" / "2_Kernel_flow.py"
    tree = ast.parse(page.read_text())
    named = {n.value for n in ast.walk(tree) if isinstance(n, ast.Constant) and isinstance(n.value, str)}
    assert not named & set(KERNELS), named & set(KERNELS)
    at = _kernel_flow_page()
    assert at.selectbox(key="flow_kernel").options == list(KERNELS)
    for name in KERNELS:
        at.selectbox(key="flow_kernel").set_value(name).run()
        assert not at.exception, (name, at.exception)
        for option in kernel_options(name):
            widget = f"flow_{option['name']}_{name}"
            assert widget in at.session_state, widget
            if option["table1"] is not None:
                assert at.session_state[widget] == option["table1"], widget
    at.number_input(key="flow_weight_constant").set_value(2.5).run()
    assert not at.exception
    assert at.session_state["flow_weight_constant"] == 2.5


def test_every_kernel_has_its_search_ranges_on_the_tuning_page(toy, cache_dir):
    from apptest import ROOT, TIMEOUT
    from streamlit.testing.v1 import AppTest

    page = ROOT / "pages" / "7_Hyperparameter_search.py"
    named = {n.value for n in ast.walk(ast.parse(page.read_text())) if isinstance(n, ast.Constant) and isinstance(n.value, str)}
    assert not named & set(KERNELS), named & set(KERNELS)
    at = AppTest.from_file(str(page), default_timeout=TIMEOUT).run()
    assert at.selectbox(key="tune_kernel").options == list(KERNELS)
    for name in KERNELS:
        at.selectbox(key="tune_kernel").set_value(name).run()
        assert not at.exception, (name, at.exception)
        for param, rule in search_space(name).items():
            if rule.scale != "bool":
                assert at.session_state[f"tune_{param}_{name}_low"] == rule.low, (name, param)
                assert at.session_state[f"tune_{param}_{name}_high"] == rule.high, (name, param)
