"""Every method on one axis: Donaldson's balanced metrics, the kernel flows and the networks.

The paper's argument (fig. 3) is one comparison: fixed kernels (the frozen-NTK flows) against
finite networks that learn features, with Donaldson's balanced metrics (introduction) as the
classical discrete flow. ``run_methods`` runs each method as an ordinary config of its own
kind, all through one ``map_configs`` call (in the job runner: cached jobs, in parallel, on
the local pool or a Dask cluster), and collects sigma against wall time and against the
training points used:

* Donaldson k = 1 ... k_max, balanced and sigma-optimised H (``DonaldsonConfig``): one point
  per k (``DonaldsonResult.sigma`` / ``opt_sigma``);
* the kernel flows (``FlowConfig``): delta, Gaussian with a cutoff radius, ReLU NTK, one point
  per step (``FlowResult.test_sigma``);
* the trained kernel (``TrainedKernelConfig``): the flow with the network's metric-NTK frozen
  after training, per step (``trained_test_sigma``);
* the metric and phi networks (``TrainConfig``): one point per epoch, on the points that are
  their validation set (``TrainResult.val_sigma``), never trained on;
* the classical flows of appendix B (``ClassicalFlowConfig``): Kahler-Ricci, Calabi and the
  two-derivative flow projected on Donaldson's algebraic family (family "classical": its
  kernel moves with H) or on a fixed basis (family "fixed basis": a fixed kernel), one point
  per step (``ClassicalFlowResult.sigma``).

The pieces are handed to ``map_configs`` in ``RUN_ORDER`` (the fastest first, so that a curve
is in within seconds; then the longest, so that it starts at once on the second worker) and
put back in the order of the series. While they run, ``methods_so_far`` builds the comparison
of the pieces finished so far (the dashboard draws it; it is never stored).

Every sigma is the reference-kappa sigma (B.11) with the manifold's one reference kappa
(``reference_kappa``), with its standard error, on ONE set of fresh test points
(``shared_test``: n_test points of their own seed stream, which no method trains on). Each
config names that sample (its ``test`` field), so each job draws the identical points (the
trained kernel too: its dense 9N x 9N kernel limits only its train points, the test points'
rows are computed in chunks). The flows use the covariant update, which acts on the
chart-independent eta, so their train points lie in every chart (``coordinates="all"``)
like the others' and need no common chart (section 3.1 needs one for the euclidean update).
``run_methods`` checks that every method's sigma of g_FS on its test points is the same.

Example:
  >>> result = run_methods(MethodsConfig.preset("quick"))
  >>> result.table()            # best sigma, time, memory, points, parameters per series
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Optional

import numpy as np

from metricflow.errors import MetricflowError
from metricflow.flows.classical import FLOW_LABELS, ClassicalFlowConfig, ClassicalFlowResult
from metricflow.flows.donaldson import DonaldsonResult
from metricflow.flows.flow import FlowResult
from metricflow.geometry.measures import measure_sigma
from metricflow.geometry.points import first_points
from metricflow.geometry.reference import reference_kappa
from metricflow.networks.models import TrainResult
from metricflow.progress import ConfigMap, Progress, map_each, no_progress, serial_map
from metricflow.studies.feature_learning import TrainedKernelResult
from metricflow.studies.methods_config import (
    FAMILIES, PRESETS, RUN_ORDER, TEST_STREAM, WORKERS, MethodsConfig, _estimate_one, _order_name, estimate_methods,
    method_configs, run_method, run_order, shared_test,
)

__all__ = [
    "METHODS_SCHEMA",
    "PRESETS",
    "MethodsConfig",
    "MethodsResult",
    "Series",
    "method_configs",
    "methods_so_far",
    "run_order",
    "RUN_ORDER",
    "WORKERS",
    "run_method",
    "run_methods",
    "estimate_methods",
    "FAMILIES",
    "FLOW_NAMES",
    "classical_name",
    "TRAINED",
    "TEST_STREAM",
    "shared_test",
]

# Bump when MethodsResult's fields or their meaning change: cached results are recomputed.
# 2: every method measures on one shared set of test points. (The config's move to
# methods_config changed its type name, so its job keys: nothing stored is read as its result.)
# 3: the classical flows of appendix B are series (families "classical" and "fixed basis").
METHODS_SCHEMA = 3

# The config, its presets and pieces are in methods_config (re-exported here).

# ---- the result ------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class Series:
    """sigma of one method against time and points. P measurements (k, step or epoch).

    Attributes:
      name: the label ("Donaldson balanced", "delta flow", "metric network", ...).
      family: "donaldson", "kernel" (fixed and trained kernels), "network", "classical" (a
        classical flow in the algebraic family) or "fixed basis" (one in a fixed basis).
      step: (P,) int64, what each measurement follows: k (Donaldson), the flow step, the epoch.
      seconds: (P,) float64, wall time spent on the method up to the measurement (see
        ``run_methods`` for what each result records).
      points: (P,) int64, training-point visits up to the measurement (see ``run_methods``).
      sigma, sigma_se: (P,) float64, reference-kappa sigma on fresh points and its error.
      sigma_self: (P,) float64, the self-normalised sigma of the same metric (NaN where the
        result does not record it).
      train_points: distinct training points the method used.
      parameters: what the method adjusts: real entries of H (N_k^2 at the best k), one scalar
        per train point (covariant kernel flows), 9 per train point (the trained kernel's
        component-mixing flow), the network's parameters, the classical space's P.
      memory_bytes: peak memory: the job's estimate (no result records its peak).
      memory_estimated: True: memory_bytes is an estimate, not a measurement.
      test_points: the shared test points sigma was measured on.
    """

    name: str
    family: str
    step: np.ndarray
    seconds: np.ndarray
    points: np.ndarray
    sigma: np.ndarray
    sigma_se: np.ndarray
    sigma_self: np.ndarray
    train_points: int
    parameters: int
    memory_bytes: int
    memory_estimated: bool
    test_points: int

    @property
    def best(self) -> int:
        """Index of the lowest finite sigma (-1 if none is finite)."""
        finite = np.isfinite(self.sigma)
        return int(np.nanargmin(np.where(finite, self.sigma, np.nan))) if finite.any() else -1

    def late_change(self) -> float:
        """sigma at the last measurement over sigma half-way: 1 - this is the fraction by
        which the second half of the run lowered sigma (NaN with fewer than 2 measurements)."""
        s = self.sigma[np.isfinite(self.sigma)]
        if s.size < 2:
            return float("nan")
        return float(s[-1] / s[(s.size - 1) // 2])


@dataclass(frozen=True, eq=False)
class MethodsResult:
    """The methods compared on one manifold with one reference kappa.

    Attributes:
      config: the MethodsConfig.
      series: the Series, in the order Donaldson balanced, (optimised), delta, Gaussian,
        ReLU NTK, metric network, (phi network), (trained kernel), (classical flows).
      kappa, kappa_se, kappa_exact: the reference kappa every method measured against.
      sigma_fs, sigma_fs_se: sigma of g_FS on the shared test points (every series starts
        there: Donaldson k = 1, a flow's step 0, a network's epoch 0 up to its init).
      seconds: the sum of the methods' job times (they may have run in parallel).
    """

    config: MethodsConfig
    series: tuple
    kappa: float
    kappa_se: float
    kappa_exact: bool
    sigma_fs: float
    sigma_fs_se: float
    seconds: float
    schema_version: int = METHODS_SCHEMA

    def by_name(self, name: str) -> Series:
        """The series called ``name``."""
        for s in self.series:
            if s.name == name:
                return s
        raise MetricflowError(f"no series {name!r}; there are {', '.join(s.name for s in self.series)}")

    def table(self) -> list[dict]:
        """One JSON-ready row per series: best sigma with its error, and where it was reached
        (step, seconds, points), the training points, parameters and peak memory."""
        rows = []
        for s in self.series:
            i = s.best
            f = lambda a: None if i < 0 or not np.isfinite(a[i]) else float(a[i])  # noqa: E731
            rows.append({
                "method": s.name, "family": s.family, "best_sigma": f(s.sigma), "best_sigma_se": f(s.sigma_se),
                "at": None if i < 0 else int(s.step[i]), "seconds": f(s.seconds),
                "points": None if i < 0 else int(s.points[i]), "train_points": s.train_points,
                "test_points": s.test_points, "parameters": s.parameters,
                "memory_mib": s.memory_bytes / 2**20, "memory_estimated": s.memory_estimated,
                "final_sigma": float(s.sigma[-1]) if len(s.sigma) else None,
                "late_change": _none(s.late_change()),
            })
        return rows

    def verdict(self) -> dict:
        """The fig. 3 comparison in numbers, JSON-ready.

        ``kernel_late_change`` and ``network_late_change``: over the fixed kernel flows (delta,
        Gaussian, ReLU NTK) and the networks, the smallest and largest ``Series.late_change``
        (sigma last / sigma half-way) and the series they belong to; the best sigma of each
        family with its series (``classical``: the algebraic family, ``fixed_basis``: the
        classical flows in a fixed basis; None without such series).
        """
        fixed = [s for s in self.series if s.family == "kernel" and s.name != TRAINED]
        nets = [s for s in self.series if s.family == "network"]

        def best(group):
            if not group:
                return None
            s = min(group, key=lambda s: s.sigma[s.best] if s.best >= 0 else np.inf)
            return {"method": s.name, "sigma": _none(s.sigma[s.best]), "sigma_se": _none(s.sigma_se[s.best])}

        def changes(group):
            vals = sorted((s.late_change(), s.name) for s in group if np.isfinite(s.late_change()))
            if not vals:
                return None
            return {"min": vals[0][0], "max": vals[-1][0], "min_method": vals[0][1], "max_method": vals[-1][1]}

        return {"fixed_kernels": best(fixed), "networks": best(nets), "kernel_late_change": changes(fixed),
                "network_late_change": changes(nets),
                "donaldson": best([s for s in self.series if s.family == "donaldson"]),
                "classical": best([s for s in self.series if s.family == "classical"]),
                "fixed_basis": best([s for s in self.series if s.family == "fixed basis"])}

    def summary(self) -> dict:
        """JSON-ready: the config's sizes, kappa, sigma_FS, the table, the verdict and the
        series' arrays (the output of ``metricflow methods --json``)."""
        c = self.config
        arr = lambda a: [_none(v) for v in np.asarray(a, dtype=float)]  # noqa: E731
        return {
            "manifold": c.manifold.name, "psi": [c.manifold.psi.real, c.manifold.psi.imag], "seed": c.seed,
            "test_points": c.n_test, "kappa": self.kappa, "kappa_se": self.kappa_se, "kappa_exact": self.kappa_exact,
            "sigma_fs": self.sigma_fs, "sigma_fs_se": self.sigma_fs_se, "seconds": self.seconds,
            "table": self.table(), "verdict": self.verdict(),
            "series": [{"method": s.name, "family": s.family, "step": [int(v) for v in s.step],
                        "seconds": arr(s.seconds), "points": [int(v) for v in s.points],
                        "sigma": arr(s.sigma), "sigma_se": arr(s.sigma_se)} for s in self.series],
        }


TRAINED = "trained kernel"


def _none(v) -> Optional[float]:
    v = float(v)
    return v if math.isfinite(v) else None


def _nan_array(n: int) -> np.ndarray:
    return np.full(n, np.nan)


def _donaldson_series(r: DonaldsonResult, memory: int) -> list[Series]:
    """Balanced: per k, seconds = sections + balancing (``DonaldsonResult.seconds``), points =
    iterations x integration points; optimised: plus the Adam time and steps x opt points."""
    out = []
    visits = r.iterations * r.n_points
    params = r.n_sections**2  # a hermitian N_k x N_k matrix has N_k^2 real entries
    common = dict(step=r.ks.astype(np.int64), train_points=int(r.n_points), memory_bytes=memory,
                  memory_estimated=True, test_points=int(r.n_test))
    s = Series("Donaldson balanced", "donaldson", seconds=r.seconds.astype(float), points=visits.astype(np.int64),
               sigma=r.sigma, sigma_se=r.sigma_se, sigma_self=r.sigma_self, parameters=0, **common)
    out.append(replace(s, parameters=int(params[s.best]) if s.best >= 0 else 0))
    if r.config.optimise:
        c = r.config
        s = Series("Donaldson σ-optimised", "donaldson", seconds=(r.seconds + r.opt_seconds).astype(float),
                   points=(visits + c.opt_steps * c.opt_points).astype(np.int64), sigma=r.opt_sigma,
                   sigma_se=r.opt_sigma_se, sigma_self=r.opt_sigma_self, parameters=0, **common)
        out.append(replace(s, parameters=int(params[s.best]) if s.best >= 0 else 0))
    return out


FLOW_NAMES = {"delta": "delta flow", "gaussian": "Gaussian flow (cutoff)", "relu-ntk": "ReLU-NTK flow"}


def _flow_series(r: FlowResult, memory: int) -> Series:
    """Per step s = 1 ... steps_done: sigma on the test points (``FlowResult.test_sigma``);
    seconds = the kernel's time plus s equal shares of the rest of the job (FlowResult
    records only ``kernel_seconds`` and the total); points = s x train points (each step sums
    over them)."""
    c = r.config
    done = int(r.steps_done)
    steps = np.arange(1, done + 1, dtype=np.int64)
    rest = max(r.seconds - r.kernel_seconds, 0.0)
    n = c.manifold.dim
    return Series(
        FLOW_NAMES.get(c.kernel.name, f"{c.kernel.name} flow"), "kernel", step=steps,
        seconds=r.kernel_seconds + rest * steps / max(done, 1), points=steps * c.n_train,
        sigma=r.test_sigma[1 : done + 1], sigma_se=r.test_sigma_se[1 : done + 1],
        sigma_self=r.test_sigma_self[1 : done + 1], train_points=c.n_train,
        parameters=c.n_train * (1 if c.update == "covariant" else n * n),
        memory_bytes=memory, memory_estimated=True, test_points=c.n_test,
    )


def _network_series(r: TrainResult, memory: int) -> Series:
    """Per epoch e = 1 ... epochs: sigma on the validation points (``TrainResult.val_sigma``,
    held out, never trained on); seconds = training time before the record
    (``train_seconds``, optimizer steps only); points = e x train points."""
    c = r.config
    n_train = c.n_points - c.n_val
    epochs = np.arange(1, c.epochs + 1, dtype=np.int64)
    return Series(
        f"{c.model} network", "network", step=epochs, seconds=r.train_seconds[1:].astype(float),
        points=epochs * n_train, sigma=r.val_sigma[1:], sigma_se=r.val_sigma_se[1:],
        sigma_self=r.val_sigma_self[1:], train_points=n_train, parameters=int(r.n_params),
        memory_bytes=memory, memory_estimated=True, test_points=c.n_val,
    )


def _trained_kernel_series(r: TrainedKernelResult, memory: int) -> Series:
    """Per step s: sigma on the flow's fresh test points with the metric-NTK frozen after
    training (``trained_test_sigma``); seconds = the whole job at every step (training and
    the kernel are all but its entire cost, and only the total is recorded); points = the
    network's epochs x train points plus s x flow train points."""
    c = r.config
    t = c.train
    valid = np.flatnonzero(np.isfinite(r.trained_test_sigma))
    valid = valid[valid > 0]
    net_visits = t.epochs * (t.n_points - t.n_val)
    return Series(
        TRAINED, "kernel", step=valid.astype(np.int64), seconds=np.full(valid.size, float(r.seconds)),
        points=(net_visits + valid * c.n_train).astype(np.int64), sigma=r.trained_test_sigma[valid],
        sigma_se=r.trained_test_sigma_se[valid], sigma_self=r.trained_test_sigma_self[valid],
        train_points=int(t.n_points - t.n_val + c.n_train), parameters=9 * c.n_train,
        memory_bytes=memory, memory_estimated=True, test_points=c.n_test,
    )


def classical_name(config: ClassicalFlowConfig) -> str:
    """The series name of a classical flow: "Kähler–Ricci flow (degree 3)" in the algebraic
    family, "Kähler–Ricci flow, fixed basis (degree 4)" in the fixed basis."""
    where = ", fixed basis" if config.space == "basis" else ""
    return f"{FLOW_LABELS[config.flow]}{where} (degree {config.k})"


def _classical_series(r: ClassicalFlowResult, memory: int) -> Series:
    """Per step s = 1 ... steps_done: sigma on the test points (``ClassicalFlowResult.sigma``);
    seconds = the flow's own time up to the step (sampling, sections and steps; its test
    measurements excluded, as Donaldson's); points = s x flow points (each step integrates E,
    its gradient and the Gram matrix over them); parameters = the space's P."""
    c = r.config
    done = int(r.steps_done)
    steps = np.arange(1, done + 1, dtype=np.int64)
    return Series(
        classical_name(c), "fixed basis" if c.space == "basis" else "classical", step=steps,
        seconds=r.seconds[1 : done + 1].astype(float), points=steps * int(r.n_points),
        sigma=r.sigma[1 : done + 1], sigma_se=r.sigma_se[1 : done + 1], sigma_self=r.sigma_self[1 : done + 1],
        train_points=int(r.n_points), parameters=int(r.n_params), memory_bytes=memory, memory_estimated=True,
        test_points=int(r.n_test),
    )


def _job_seconds(r) -> float:
    return float(getattr(r, "total_seconds", None) or r.seconds)


def _start_sigma(r) -> float:
    """sigma of g_FS on the test points of result ``r`` (the first measurement of a flow)."""
    if isinstance(r, FlowResult):
        return float(r.test_sigma[0])
    if isinstance(r, TrainedKernelResult):
        return float(r.initial_test_sigma[0])
    if isinstance(r, ClassicalFlowResult):
        return float(r.sigma[0])
    return float(r.sigma_fs)  # DonaldsonResult, TrainResult


def _check_shared_points(config: MethodsConfig, configs: list, results: list) -> None:
    """Check that every method measured on the shared test points: its sigma of g_FS there
    equals sigma of g_FS computed here from ``shared_test(config)``."""
    pts = first_points(shared_test(config), config.n_test)
    expected = measure_sigma(pts.g_fs, pts.omega_sq, pts.weights, reference_kappa(config.manifold)).sigma
    for c, r in zip(configs, results):
        got = _start_sigma(r)
        if not math.isclose(got, expected, rel_tol=1e-9):
            raise MetricflowError(
                f"{type(c).__name__} measured sigma of g_FS {got:.6g} on its test points, not the shared points' "
                f"{expected:.6g}: it did not measure on the shared test points; rerun without the cache"
            )


def _series_of(r, memory: int) -> list[Series]:
    """The series of one piece's result."""
    if isinstance(r, DonaldsonResult):
        return _donaldson_series(r, memory)
    if isinstance(r, FlowResult):
        return [_flow_series(r, memory)]
    if isinstance(r, TrainResult):
        return [_network_series(r, memory)]
    if isinstance(r, TrainedKernelResult):
        return [_trained_kernel_series(r, memory)]
    if isinstance(r, ClassicalFlowResult):
        return [_classical_series(r, memory)]
    raise MetricflowError(f"unexpected result {type(r).__name__} among the methods")


def _reference(r) -> Optional[tuple]:
    """(kappa, kappa_se, kappa_exact, sigma_fs, sigma_fs_se) as result ``r`` records them
    (None for the trained kernel, which records no kappa)."""
    if isinstance(r, DonaldsonResult):
        return float(r.kappa), float(r.kappa_se), bool(r.kappa_exact), float(r.sigma_fs), float(r.sigma_fs_se)
    if isinstance(r, TrainResult):
        k = r.kappa
        return float(k.value), float(k.se), bool(k.exact), float(r.sigma_fs), float(r.sigma_fs_se)
    if isinstance(r, FlowResult):
        se = float(r.kappa_ref_se)
        return float(r.kappa_ref), se, se == 0.0, float(r.test_sigma[0]), float(r.test_sigma_se[0])
    if isinstance(r, ClassicalFlowResult):
        return float(r.kappa), float(r.kappa_se), bool(r.kappa_exact), float(r.sigma[0]), float(r.sigma_se[0])
    return None


def methods_so_far(config: MethodsConfig, results: list) -> Optional[MethodsResult]:
    """The comparison of the pieces finished so far, while ``run_methods`` runs: a partial view.

    Args:
      config: the MethodsConfig.
      results: one entry per ``config.configs()`` piece, in that order: its result, or None
        while it is not finished.

    Returns:
      A MethodsResult holding the finished pieces' series (in the series' order), or None
      until a piece that records kappa is in. ``seconds`` is the sum of the finished jobs'.
      It is a view for the dashboard, never stored: ``run_methods`` alone makes the result.
    """
    configs = config.configs()
    if len(results) != len(configs):
        raise MetricflowError(f"expected {len(configs)} results (one per piece, None if unfinished), got {len(results)}")
    done = [(c, r) for c, r in zip(configs, results) if r is not None]
    refs = [_reference(r) for _, r in sorted(done, key=lambda cr: not isinstance(cr[1], DonaldsonResult))]
    refs = [x for x in refs if x is not None]
    if not refs:
        return None
    kappa, kappa_se, exact, sigma_fs, sigma_fs_se = refs[0]
    series = [s for c, r in done for s in _series_of(r, _estimate_one(c).bytes)]
    return MethodsResult(config=config, series=tuple(series), kappa=kappa, kappa_se=kappa_se, kappa_exact=exact,
                         sigma_fs=sigma_fs, sigma_fs_se=sigma_fs_se,
                         seconds=float(sum(_job_seconds(r) for _, r in done)))


def run_methods(config: MethodsConfig, progress: Optional[Progress] = None,
                map_configs: ConfigMap = serial_map) -> MethodsResult:
    """Run every method of ``config`` and put them on one sigma-time and sigma-points axis.

    All configs go through one ``map_configs(run_method, configs)`` call, in ``RUN_ORDER``
    (``map_each``: the progress moves as each piece ends). What each series
    records (``Series``), from the fields its result has:

    * Donaldson: per k, sigma on its fresh test points (``DonaldsonResult.sigma``,
      ``opt_sigma``); seconds: sections and balancing (plus the Adam steps); points: the
      T-operator iterations x integration points (plus Adam steps x opt points).
    * kernel flows: per step, ``FlowResult.test_sigma``; seconds: the kernel's time plus equal
      shares of the rest per step; points: steps x train points.
    * networks: per epoch, ``TrainResult.val_sigma`` on the held-out validation points;
      seconds: ``train_seconds``; points: epochs x train points.
    * trained kernel: per step, ``TrainedKernelResult.trained_test_sigma``; seconds: the
      whole job; points: the network's point visits plus steps x flow train points.
    * classical flows: per step, ``ClassicalFlowResult.sigma``; seconds: the flow's own time
      (its test measurements excluded); points: steps x flow points.

    Args:
      config: the MethodsConfig.
      progress: optional ``progress(done, total, message)``.
      map_configs: runs the configs (``metricflow.progress.ConfigMap``); the job runner
        passes one that makes each a cached job, run in parallel.

    Returns:
      MethodsResult.

    Raises:
      MetricflowError: if the methods did not all measure against the same reference kappa,
        or not on the same test points (sigma of g_FS on them differs from the shared set's).
    """
    report = progress or no_progress
    configs = config.configs()
    order = run_order(configs)
    total, finished = len(configs), []
    report(0, total, f"{total} methods")

    def each(i: int, result) -> None:
        finished.append(i)
        report(len(finished), total, f"{_order_name(configs[order[i]])} done ({len(finished)} of {total})")

    ran = map_each(map_configs, run_method, [configs[i] for i in order], each)
    results: list = [None] * total
    for i, r in zip(order, ran):
        results[i] = r
    report(total, total, "done")
    memory = [_estimate_one(c).bytes for c in configs]
    donaldson = results[0]
    kappas = {round(donaldson.kappa, 12)}
    series: list[Series] = []
    for r, mem in zip(results, memory):
        ref = _reference(r)
        if ref is not None:
            kappas.add(round(ref[0], 12))
        series += _series_of(r, mem)
    if len(kappas) != 1:
        raise MetricflowError(f"the methods measured against different reference kappas {sorted(kappas)}")
    _check_shared_points(config, configs, results)
    return MethodsResult(
        config=config, series=tuple(series), kappa=float(donaldson.kappa), kappa_se=float(donaldson.kappa_se),
        kappa_exact=bool(donaldson.kappa_exact), sigma_fs=float(donaldson.sigma_fs),
        sigma_fs_se=float(donaldson.sigma_fs_se), seconds=float(sum(_job_seconds(r) for r in results)),
    )

