"""Partial series (metricflow.progress.publish): studies with steps or epochs hand the series
so far to a progress callback that takes one, and it agrees with the final result."""

import json

import numpy as np

from metricflow.figures.partial import partial_figures
from metricflow.flows.donaldson import DonaldsonConfig, run_donaldson
from metricflow.flows.flow import FlowConfig, run_flow
from metricflow.geometry.manifolds import Manifold
from metricflow.jobs import JobStore, NoExecutor, job_key, job_kind, run_job
from metricflow.networks.family import FamilyTrainConfig, train_family
from metricflow.networks.models import TrainConfig, train
from metricflow.studies.feature_learning import WidthSweepConfig, run_width_sweep
from metricflow.studies.generalisation import NoiseConfig, run_noise
from metricflow.studies.moduli import DonaldsonSweepConfig, run_donaldson_sweep
from metricflow.studies.tuning import TuneConfig, run_tune


class Collect:
    """A progress callback with a ``partial`` attribute: keeps every partial series, unthrottled."""

    def __init__(self):
        self.series = []

    def __call__(self, step, total, message=""):
        pass

    def partial(self, make):
        made = make()
        json.dumps(made, allow_nan=False)  # plain JSON: no NaN, no numpy types
        self.series.append(made)


def curve(partial: dict, title: str, name: str) -> tuple[list, list]:
    """(xs, ys) of the curve ``name`` in the panel titled ``title``."""
    panel = next(p for p in partial["panels"] if p["title"] == title)
    series = panel["series"][name]
    return series["x"], series["y"]


def test_flow_publishes_sigma_and_gain_per_step():
    got = Collect()
    r = run_flow(FlowConfig(kernel="delta", n_train=200, n_test=200, steps=10, coordinates="all"), got)
    assert r.steps_done == 10 and len(got.series) == 11
    for step, partial in enumerate(got.series):
        xs, ys = curve(partial, "σ per step", "train")
        assert xs == list(range(step + 1)) and len(ys) == step + 1
    last = got.series[-1]
    assert [f.layout.title.text for f in partial_figures(last)] == ["σ per step (computing)", "gain σ₀/σ per step (computing)"]
    for part in ("train", "test"):
        sigma = getattr(r, f"{part}_sigma")
        np.testing.assert_allclose(curve(last, "σ per step", part)[1], sigma, rtol=1e-12)
        np.testing.assert_allclose(curve(last, "gain σ₀/σ per step", part)[1], sigma[0] / sigma, rtol=1e-12)


def test_flow_without_a_partial_callback_runs_as_before():
    config = FlowConfig(kernel="delta", n_train=200, n_test=200, steps=3, coordinates="all")
    quiet, told = run_flow(config), run_flow(config, lambda step, total, message="": None)
    np.testing.assert_array_equal(quiet.test_sigma, told.test_sigma)


def test_train_publishes_sigma_per_epoch():
    got = Collect()
    r = train(TrainConfig(n_points=200, epochs=2, width=8, depth=1, ntk_probe=3, ntk_every=1, ricci=False), got)
    assert len(got.series) == 3
    assert [len(curve(p, "σ per epoch", "validation")[1]) for p in got.series] == [1, 2, 3]
    last = got.series[-1]
    np.testing.assert_allclose(curve(last, "σ per epoch", "validation")[1], r.val_sigma, rtol=1e-12)
    xs, ys = curve(last, "σ per epoch", "train loss (batch σ)")
    assert xs == [1, 2]
    np.testing.assert_allclose(ys, r.train_loss, rtol=1e-12)


def test_family_publishes_each_psis_sigma_per_epoch():
    got = Collect()
    r = train_family(FamilyTrainConfig(psis=(0,), n_points=100, epochs=2, width=8, depth=1), got)
    assert [len(curve(p, "validation σ per epoch", "ψ = 0")[1]) for p in got.series] == [1, 2, 3]
    np.testing.assert_allclose(curve(got.series[-1], "validation σ per epoch", "ψ = 0")[1], r.val_sigma[0], rtol=1e-12)
    np.testing.assert_allclose(curve(got.series[-1], "train loss per epoch", "train loss")[1], r.train_loss, rtol=1e-12)


def test_donaldson_publishes_sigma_per_k_and_iterations():
    got = Collect()
    r = run_donaldson(DonaldsonConfig(Manifold(5, 0), ks=(1, 2), n_points=1000, n_test=500, seed=1), got)
    per_k = [curve(p, "σ per k", "balanced") for p in got.series]
    assert per_k[0] == ([], []) and per_k[-1][0] == [1, 2]
    np.testing.assert_allclose(per_k[-1][1], r.sigma, rtol=1e-12)
    for k, history in zip(r.ks, r.residual_history):
        np.testing.assert_allclose(curve(got.series[-1], "T-operator change per iteration", f"k = {k}")[1], history,
                                   rtol=1e-12)
    # one series per iteration of the T-operator, and one after each k
    assert len(got.series) == int(r.iterations.sum()) + len(r.ks)
    assert all(len(partial_figures(p)) == 2 for p in got.series)


def test_width_sweep_publishes_each_width_as_it_is_done():
    got = Collect()
    r = run_width_sweep(WidthSweepConfig(widths=(8, 16), n_points=200, epochs=1, ntk_probe=3), got)
    assert [len(p["panels"][0]["series"]) for p in got.series] == [1, 2]
    last = got.series[-1]
    for w, sigma in zip(r.widths, r.val_sigma):
        np.testing.assert_allclose(curve(last, "validation σ per epoch", f"width {w}")[1], sigma, rtol=1e-12)
    xs, ys = curve(last, "kernel change per width", "kernel change")
    assert xs == [8, 16]
    np.testing.assert_allclose(ys, r.kernel_change, rtol=1e-12)


def test_donaldson_sweep_publishes_each_psi_as_it_is_done():
    got = Collect()
    r = run_donaldson_sweep(DonaldsonSweepConfig(psis=(0,), k=2, n_points=300, n_test=200), got)
    assert len(got.series) == 1 and got.series[0]["note"] == "ψ: 0"
    np.testing.assert_allclose(curve(got.series[0], "σ per ψ", "balanced g_2")[1], r.sigma, rtol=1e-12)
    np.testing.assert_allclose(curve(got.series[0], "σ per ψ", "g_FS")[1], r.sigma_fs, rtol=1e-12)


def test_noise_study_publishes_the_gain_per_level_and_the_running_flow():
    got = Collect()
    r = run_noise(NoiseConfig(kernel="delta", noise=(0.0, 1e-4), n_train=100, steps=3), got)
    titles = [[p["title"] for p in partial["panels"]] for partial in got.series]
    assert ["test gain per noise level", "σ per step (noise 0.0001)", "gain σ₀/σ per step (noise 0.0001)"] in titles
    np.testing.assert_allclose(curve(got.series[-1], "test gain per noise level", "test gain")[1], r.gain, rtol=1e-12)


def test_tuning_publishes_the_objective_and_the_best_so_far():
    got = Collect()
    config = TuneConfig(kernel="delta", init_points=2, iterations=1, steps=3, n_test=100, bounds=(("n_train", 100, 100),),
                        spread_seeds=1)
    r = run_tune(config, got)
    last = got.series[-1]
    np.testing.assert_allclose(curve(last, "objective per evaluation", "objective")[1], r.objectives, rtol=1e-12)
    np.testing.assert_allclose(curve(last, "objective per evaluation", "best so far")[1], r.best_so_far, rtol=1e-12)
    assert curve(last, "best setting on fresh point sets", "objective")[1] == [e.objective for e in r.spread]


def test_job_store_keeps_a_partial_only_while_the_job_runs(tmp_path):
    config = FlowConfig(kernel="delta", n_train=200, n_test=200, steps=10, coordinates="all")
    store = JobStore(tmp_path, executor=NoExecutor())
    key = job_key(config, job_kind(config).schema_version)
    seen, publish = [], store.publish

    def publish_and_read(k, partial):  # what the dashboard reads while the job runs
        kept = publish(k, partial)
        seen.append(store.partial(key))
        return kept

    store.publish = publish_and_read
    result = run_job(config, store=store)
    assert seen and seen[0] is not None  # the first is never throttled
    for partial in seen:
        xs, ys = curve(partial, "σ per step", "test")
        np.testing.assert_allclose(ys, result.test_sigma[: len(xs)], rtol=1e-12)
    assert store.partial(key) is None  # the result replaces it
    store.close()
