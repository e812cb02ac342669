"""Hyperparameter search for kernel flows by Bayesian optimisation (section 3.2, table 1).

The paper tunes the step size Delta t of (3.5) and the kernel's options (the width sigma of
the Gaussian (3.6), sigma_w and sigma_b of the ReLU NTK, the number of points) with the
``bayesian-optimization`` package [30], drawing "a new set of points for each Bayesian
optimization run since [...] otherwise the optimizer tunes the hyperparameters to the
specific point set". Here:

  * The objective of evaluation i is log10 of the test gain sigma_0 / sigma_S of the flow
    (3.5) after S steps (``FlowResult.test_gain``), on train and test points drawn with the
    flow seed ``evaluation_seed(seed, i)``: a new point set every evaluation. A flow that
    diverges scores its gain at the last completed step (``diverged="last"``) or ``FLOOR``
    (``diverged="floor"``); a gain below 10**FLOOR, or not finite, scores FLOOR, and the
    evaluation says so (``Evaluation.floored``).
  * The optimiser is ``bayes_opt.BayesianOptimization`` with an explicit random_state, driven
    through suggest/register (``bayes_search``): ``init_points`` random settings, then
    ``iterations`` settings that maximise the upper confidence bound of a Gaussian process.
    Log-scale parameters (lr, sigma, sigma_w, n_train) are searched in log10; n_train is
    rounded to an integer; the update normalisation is a [0, 1] dimension rounded at 0.5.
    A parameter whose bounds have low == high is fixed and not searched. What a kernel
    searches besides n_train and lr, with its scale and default range, is its spec's
    ``search`` (``metricflow.kernels``): nothing here names a kernel.
  * Every evaluation is an ordinary flow job (``metricflow.jobs.run_job(FlowConfig)``), so it
    is stored. Given the seed and the previous (setting, objective) pairs the optimiser's next
    setting is determined, so a search that was interrupted replays: the same settings are
    suggested again, their flows are found in the store and re-registered in order, and only
    the evaluations that never finished are computed.
  * The best setting is run again on ``spread_seeds`` fresh point sets; the mean and standard
    deviation of the objective there measure how much of the best score was the point set.

Example:
  >>> result = run_tune(TuneConfig(kernel="delta", init_points=5, iterations=10, steps=20))
  >>> result.best_params, result.best_gain, result.spread_mean, result.spread_std
"""

from __future__ import annotations

import math
import time
import warnings
from dataclasses import dataclass, field, fields
from typing import Callable, ClassVar, NamedTuple, Optional, Sequence

import numpy as np

from metricflow.constraints import SEED, Count, Flag, OneOf, Points, validate
from metricflow.errors import MetricflowError, check_count
from metricflow.flows.flow import SCHEMA_VERSION as FLOW_SCHEMA
from metricflow.flows.flow import DEFAULT_LOSS, UPDATES, FlowConfig, FlowResult, estimate_flow, flow_from_options, run_flow
from metricflow.estimates import Estimate
from metricflow.kernels import KERNELS, START_KERNEL, Search, stream_seed
from metricflow.flows.losses import LOSSES
from metricflow.geometry.manifolds import Manifold
from metricflow.hashing import config_key
from metricflow.progress import ConfigMap, Progress, map_each, panel, publish, serial_map, stored_flags

__all__ = [
    "TUNE_SCHEMA",
    "FLOOR",
    "SCALES",
    "DEFAULT_BOUNDS",
    "COMMON_SEARCH",
    "search_space",
    "Bound",
    "Dimension",
    "Trial",
    "TuneConfig",
    "Evaluation",
    "TuneResult",
    "bayes_search",
    "evaluation_seed",
    "spread_seed",
    "objective",
    "run_tune",
    "estimate_tune",
    "table1_comparison",
    "evaluations_csv",
]

# Bump when TuneResult's fields or their meaning change: cached results are then recomputed.
# 2: the flow's update rule (covariant by default) and its default loss; 3: the flows hold
# their kernel's spec (flow schema 3), so the evaluations' keys changed.
TUNE_SCHEMA = 3

# log10 of the smallest test gain scored: a gain below 1e-2, or NaN, scores -2.
FLOOR = -2.0

# Gaussian-process noise (added to the diagonal, in units of the normalised objective): the
# objective is noisy, since each evaluation draws new points.
GP_ALPHA = 1e-3
# Upper confidence bound kappa (the package's default).
UCB_KAPPA = 2.576

# Seed streams (flow.py uses 0 train, 1 test, 2 cosnet weights; generalisation.py 3 and 4).
SEARCH_STREAM = 5
SPREAD_STREAM = 6

# What every kernel's search has: the number of points and the step size. The learning rates
# bracket table 1 (0.1-0.32) by a factor ~30 each way. A kernel adds its own parameters
# (its spec's ``search``: options, and the normalisation where it matters). Scales: "log"
# (log10 of the value), "int" (log10, rounded to an integer), "linear", "bool" (a [0, 1]
# dimension, True at >= 0.5).
COMMON_SEARCH = {"n_train": Search("int", 250, 2500), "lr": Search("log", 1e-2, 3.0)}


def search_space(kernel: str) -> dict:
    """{parameter: Search(scale, low, high)} of ``kernel``'s search, in search order."""
    return {**COMMON_SEARCH, **KERNELS[kernel].search}


# The scale of every parameter some registered kernel searches, and the default bounds per
# kernel, {kernel: {parameter: (low, high)}} (read by the page; built from the registry).
SCALES = {name: rule.scale for kernel in KERNELS for name, rule in search_space(kernel).items()}
DEFAULT_BOUNDS = {kernel: {name: (rule.low, rule.high) for name, rule in search_space(kernel).items()} for kernel in KERNELS}



def _quiet(step: int, total: int, message: str = "") -> None:
    pass


# ---- the optimiser --------------------------------------------------------------------------


class Bound(NamedTuple):
    """Search range of one FlowConfig field or kernel option: low <= value <= high (low == high fixes it)."""

    name: str
    low: float
    high: float


@dataclass(frozen=True)
class Dimension:
    """One searched parameter: its name, bounds in its own units, and its scale (``SCALES``)."""

    name: str
    low: float
    high: float
    scale: str = "linear"

    def internal(self) -> tuple[float, float]:
        """The bounds the optimiser sees (log10 for "log" and "int")."""
        if self.scale in ("log", "int"):
            return math.log10(self.low), math.log10(self.high)
        if self.scale == "bool":
            return 0.0, 1.0
        return float(self.low), float(self.high)

    def value(self, x: float):
        """The parameter value for the optimiser's coordinate x."""
        if self.scale == "log":
            return float(min(max(10.0**x, self.low), self.high))
        if self.scale == "int":
            return int(min(max(round(10.0**x), self.low), self.high))
        if self.scale == "bool":
            return bool(x >= 0.5)
        return float(x)


@dataclass(frozen=True)
class Trial:
    """One evaluation of ``bayes_search``: its index, the parameters, the optimiser's raw
    coordinates (log10 for log scales) and the objective value."""

    index: int
    params: dict
    raw: dict
    value: float


def bayes_search(
    objective: Callable[[int, dict], float],
    dimensions: Sequence[Dimension],
    iterations: int,
    init_points: int,
    seed: int,
    after: Optional[Callable[[Trial], None]] = None,
    batch: int = 1,
    evaluate_batch: Optional[Callable[[list], list]] = None,
) -> list[Trial]:
    """Maximise ``objective`` by Bayesian optimisation (bayes_opt, suggest/register).

    The first ``init_points`` settings are random, the next ``iterations`` maximise the upper
    confidence bound (kappa ``UCB_KAPPA``) of a Matern-5/2 Gaussian process with noise
    ``GP_ALPHA``. Everything is determined by ``seed`` and the values returned so far, so
    calling again with an objective that returns the same values replays the same settings.

    Args:
      objective: ``objective(index, params) -> float``, params a dict name -> value.
      dimensions: the searched parameters (at least one).
      iterations, init_points: optimiser steps after ``init_points`` random ones.
      seed: the optimiser's random_state.
      after: optional callback after each trial (for progress; may raise to stop).
      batch: settings proposed per round (1: one at a time, as above). With batch > 1 the
        random phase and the optimiser phase each go in rounds of ``batch`` settings; within
        a round the optimiser proposes by the constant liar (bayes_opt ``ConstantLiar``:
        each pending setting counts as observed at the mean objective so far, so the next
        proposal goes elsewhere), and the round is evaluated together.
      evaluate_batch: ``evaluate_batch([(index, params), ...]) -> [value, ...]`` for a round
        (in parallel, say); default: ``objective`` on each in turn.

    Returns:
      The trials in order.

    Example:
      >>> dims = [Dimension("x", -2, 2), Dimension("y", -2, 2)]
      >>> trials = bayes_search(lambda i, p: -(p["x"] - 0.5) ** 2 - p["y"] ** 2, dims, 25, 5, seed=0)
      >>> max(trials, key=lambda t: t.value).params
    """
    from bayes_opt import BayesianOptimization, acquisition

    if not dimensions:
        raise MetricflowError("bayes_search needs at least one dimension to search")
    for d in dimensions:
        if d.scale not in ("log", "int", "linear", "bool"):
            raise MetricflowError(f"scale of {d.name} must be log, int, linear or bool, got {d.scale!r}")
    optimiser = BayesianOptimization(
        f=None,
        pbounds={d.name: d.internal() for d in dimensions},
        acquisition_function=acquisition.UpperConfidenceBound(kappa=UCB_KAPPA),
        random_state=int(seed) % 2**32,
        verbose=0,
        allow_duplicate_points=True,
    )
    optimiser.set_gp_params(alpha=GP_ALPHA)
    if batch > 1:
        return _bayes_rounds(objective, dimensions, iterations, init_points, seed, after, batch, evaluate_batch)
    trials = []
    for index in range(init_points + iterations):
        with warnings.catch_warnings():  # the GP fit warns on converged length scales
            warnings.simplefilter("ignore")
            raw = optimiser.random_sample(1)[0] if index < init_points else optimiser.suggest()
        raw = {d.name: float(raw[d.name]) for d in dimensions}
        params = {d.name: d.value(raw[d.name]) for d in dimensions}
        _record(optimiser, trials, Trial(index, params, raw, objective(index, params)), after)
    return trials


def _record(optimiser, trials: list, trial: "Trial", after) -> None:
    """Tell the optimiser an evaluated setting, keep it, and report it."""
    value = float(trial.value)
    if not math.isfinite(value):
        raise MetricflowError(f"the objective at {trial.params} is {value}; it must be a finite number")
    trial = Trial(trial.index, trial.params, trial.raw, value)
    optimiser.register(params=trial.raw, target=value)
    trials.append(trial)
    if after is not None:
        after(trial)


def _bayes_rounds(objective, dimensions, iterations, init_points, seed, after, batch, evaluate_batch):
    """``bayes_search`` with ``batch`` > 1: rounds of settings proposed by the constant liar."""
    from bayes_opt import BayesianOptimization, acquisition

    optimiser = BayesianOptimization(
        f=None,
        pbounds={d.name: d.internal() for d in dimensions},
        acquisition_function=acquisition.ConstantLiar(acquisition.UpperConfidenceBound(kappa=UCB_KAPPA), strategy="mean"),
        random_state=int(seed) % 2**32,
        verbose=0,
        allow_duplicate_points=True,
    )
    optimiser.set_gp_params(alpha=GP_ALPHA)
    total = init_points + iterations
    trials: list[Trial] = []
    index = 0
    while index < total:
        size = min(batch, (init_points if index < init_points else total) - index)
        raws = []
        for j in range(size):
            with warnings.catch_warnings():  # the GP fit warns on converged length scales
                warnings.simplefilter("ignore")
                raw = optimiser.random_sample(1)[0] if index + j < init_points else optimiser.suggest()
            raws.append({d.name: float(raw[d.name]) for d in dimensions})
        items = [(index + j, {d.name: d.value(r[d.name]) for d in dimensions}) for j, r in enumerate(raws)]
        values = evaluate_batch(items) if evaluate_batch is not None else [objective(i, p) for i, p in items]
        for (i, params), raw, value in zip(items, raws, values):
            _record(optimiser, trials, Trial(i, params, raw, value), after)
        index += size
    return trials


# ---- the search over kernel flows --------------------------------------------------------


def evaluation_seed(seed: int, index: int) -> int:
    """Flow seed of evaluation ``index`` of the search with ``seed``: a new point set each time."""
    return stream_seed(seed, SEARCH_STREAM, index)


def spread_seed(seed: int, index: int) -> int:
    """Flow seed of the ``index``-th rerun of the best setting (disjoint from the search's)."""
    return stream_seed(seed, SPREAD_STREAM, index)


def _number(value, name: str) -> float:
    if isinstance(value, bool):
        raise MetricflowError(f"{name} must be a number, got {value!r}")
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise MetricflowError(f"{name} must be a number, got {value!r}") from None
    if not math.isfinite(value):
        raise MetricflowError(f"{name} must be finite, got {value!r}")
    return value


def _resolve_bounds(kernel: str, bounds) -> tuple:
    """Default bounds of ``kernel`` updated with ``bounds``, validated, in search order."""
    space = search_space(kernel)
    merged = {name: (rule.low, rule.high) for name, rule in space.items()}
    try:
        items = [tuple(b) for b in bounds]
    except TypeError:
        raise MetricflowError(f"bounds must be (name, low, high) triples, got {bounds!r}") from None
    for item in items:
        if len(item) != 3 or not isinstance(item[0], str):
            raise MetricflowError(f"each bound must be (name, low, high), got {item!r}")
        name = item[0]
        if name not in space:
            raise MetricflowError(
                f"{name!r} cannot be searched for the {kernel} kernel; it takes {', '.join(sorted(space))}"
            )
        merged[name] = item[1:]
    out = []
    for name in space:
        low, high = (_number(v, f"bound of {name}") for v in merged[name])
        scale = space[name].scale
        if low > high:
            raise MetricflowError(f"bounds of {name} must have low <= high, got ({low:g}, {high:g})")
        if scale in ("log", "int") and low <= 0:
            raise MetricflowError(f"{name} is searched on a log scale; its bounds must be positive, got ({low:g}, {high:g})")
        if scale == "linear" and low < 0:
            raise MetricflowError(f"bounds of {name} must be non-negative, got ({low:g}, {high:g})")
        if scale == "int":
            low, high = check_count(low, f"lower bound of {name}"), check_count(high, f"upper bound of {name}")
        if scale == "bool":
            if low not in (0, 1) or high not in (0, 1):
                raise MetricflowError(f"bounds of {name} must be (0, 1) to search it, or (0, 0) / (1, 1) to fix it; got ({low:g}, {high:g})")
            low, high = int(low), int(high)
        out.append(Bound(name, low, high))
    return tuple(out)


@dataclass(frozen=True)
class TuneConfig:
    """A Bayesian-optimisation search of one kernel flow's hyperparameters. Computes nothing.

    Attributes:
      kernel: a name in the registry ``metricflow.kernels.KERNELS``; options it does not
        search take the spec's defaults (table 1).
      iterations: optimiser steps after the random ones (evaluations = init_points + iterations).
      init_points: random settings first (at least 1).
      steps: flow steps S of every evaluation; the objective is log10 of the test gain after S.
      seed: the optimiser's random_state; evaluation i draws its points with
        ``evaluation_seed(seed, i)``.
      bounds: (name, low, high) triples that replace entries of the kernel's default ranges
        (``search_space(kernel)``); low == high fixes a parameter. Stored resolved: every
        searched or fixed parameter, in search order, as ``Bound``s.
      n_test: test points of every evaluation (fixed, so every objective has the same noise).
      loss: the loss of the flow; None = the update's default (log for covariant; the
        paper's sigma for euclidean).
      weighted: the flow's loss uses the CY weights (FlowConfig.weighted).
      diverged: how a flow that stopped early scores: "last" (its gain at the last completed
        step) or "floor" (FLOOR).
      spread_seeds: fresh point sets on which the best setting is rerun (0: none).
      manifold: the hypersurface.
      batch: settings evaluated in parallel per round (``bayes_search``); each is its own
        flow job (``run_many``), run wherever the job store runs jobs. 1 (the default, left
        out of the job key) is the one-at-a-time search.
      update: the flow's update rule (FlowConfig.update): "covariant" (default) or "euclidean".
    """

    kernel: str = START_KERNEL
    iterations: int = 10
    init_points: int = 5
    steps: int = 20
    seed: int = 0
    bounds: tuple = ()
    n_test: int = 1000
    loss: Optional[str] = None
    weighted: bool = True
    diverged: str = "last"
    spread_seeds: int = 3
    manifold: Manifold = field(default_factory=Manifold)
    batch: int = field(default=1, metadata={"key": "omit-default"})
    update: str = "covariant"

    constraints: ClassVar[dict] = {
        "update": OneOf(UPDATES, "update"),
        "batch": Count("batch", maximum=256),
        "diverged": OneOf(("last", "floor"), "diverged", either=True),
        "iterations": Count("iterations", minimum=0, maximum=10_000),
        "init_points": Count("init points", maximum=10_000),
        "steps": Count("steps", maximum=100_000),
        "seed": SEED,
        "n_test": Points("test points"),
        "spread_seeds": Count("spread seeds", minimum=0, maximum=1000),
        "weighted": Flag("weighted"),
    }

    def __post_init__(self):
        # the kernel registry may grow after import (a new kernel registered at run time)
        validate(self, {**self.constraints, "kernel": OneOf(tuple(KERNELS), "kernel")})
        if self.loss is None:
            object.__setattr__(self, "loss", DEFAULT_LOSS[self.update])
        validate(self, {"loss": OneOf(tuple(LOSSES), "loss")})
        object.__setattr__(self, "bounds", _resolve_bounds(self.kernel, self.bounds))

    @property
    def evaluations(self) -> int:
        return self.init_points + self.iterations

    def scale(self, name: str) -> str:
        """The search scale of parameter ``name`` ("log", "int", "linear" or "bool")."""
        return search_space(self.kernel)[name].scale

    def dimensions(self) -> list[Dimension]:
        """The searched parameters (bounds with low < high)."""
        return [Dimension(b.name, b.low, b.high, self.scale(b.name)) for b in self.bounds if b.low < b.high]

    def fixed(self) -> dict:
        """The parameters fixed by low == high bounds."""
        return {b.name: (bool(b.low) if self.scale(b.name) == "bool" else b.low) for b in self.bounds if b.low == b.high}

    def flow_config(self, params: dict, seed: int) -> FlowConfig:
        """The FlowConfig of one evaluation; parameters not in ``params`` or ``fixed()`` take
        table 1 (kernel options go into the kernel's spec)."""
        return flow_from_options(
            kernel=self.kernel, loss=self.loss, n_test=self.n_test, steps=self.steps, weighted=self.weighted,
            seed=seed, manifold=self.manifold, update=self.update, **{**self.fixed(), **params},
        )

    def to_dict(self) -> dict:
        out = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "manifold"}
        out["bounds"] = [list(b) for b in self.bounds]
        out["manifold"] = {"degree": self.manifold.degree, "psi": [self.manifold.psi.real, self.manifold.psi.imag]}
        return out


@dataclass(frozen=True)
class Evaluation:
    """One flow of the search.

    Attributes:
      index: evaluation number (0-based); the first ``init_points`` are random settings.
      seed: the flow seed (``evaluation_seed`` or ``spread_seed``): its point set.
      params: the searched parameters, by FlowConfig field name.
      objective: the score, log10 of the test gain (see ``objective``).
      test_gain, train_gain: sigma_0 / sigma at the last completed step.
      steps_done: flow steps completed (< steps when it diverged).
      floored: the score is FLOOR (the gain was below 10**FLOOR, not finite, or diverged
        with ``diverged="floor"``).
      stopped_reason: the flow's stop message, or None.
      seconds: the flow's compute time (when it was first computed).
      reused: the flow was found in the job store, not computed by this search.
      key: the flow's job key.
    """

    index: int
    seed: int
    params: dict
    objective: float
    test_gain: float
    train_gain: float
    steps_done: int
    floored: bool
    stopped_reason: Optional[str]
    seconds: float
    reused: bool
    key: str

    def to_dict(self) -> dict:
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        out["gain"] = 10.0**self.objective
        return {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in out.items()}


@dataclass(frozen=True, eq=False)
class TuneResult:
    """The record of a search. E evaluations, K spread seeds.

    Attributes:
      config: the TuneConfig.
      evaluations: E Evaluations in order.
      best_index: the evaluation with the highest objective (the first, on ties).
      best_params: its params plus the fixed ones (FlowConfig fields).
      best_objective: its objective, log10 of its test gain.
      spread: K Evaluations of the best setting on fresh point sets (index = rerun number).
      spread_mean, spread_std: mean and sample standard deviation of their objectives (NaN
        if K < 1, std NaN if K < 2).
      seconds: wall time of this search (short when the evaluations were reused).
      schema_version: TUNE_SCHEMA.
    """

    config: TuneConfig
    evaluations: tuple
    best_index: int
    best_params: dict
    best_objective: float
    spread: tuple
    spread_mean: float
    spread_std: float
    seconds: float
    schema_version: int = TUNE_SCHEMA

    @property
    def best_gain(self) -> float:
        """The best evaluation's test gain factor 10**best_objective (biased up: it is a maximum)."""
        return 10.0**self.best_objective

    @property
    def objectives(self) -> np.ndarray:
        """(E,) float64: the objective of each evaluation."""
        return np.array([e.objective for e in self.evaluations], dtype=np.float64)

    @property
    def best_so_far(self) -> np.ndarray:
        """(E,) float64: the highest objective among evaluations 0..i."""
        return np.maximum.accumulate(self.objectives)

    @property
    def reused(self) -> int:
        """How many flows (search and spread) were found in the job store."""
        return sum(e.reused for e in (*self.evaluations, *self.spread))

    def to_dict(self) -> dict:
        """JSON-ready dict (the output of ``metricflow tune --json``)."""
        nan = lambda v: None if isinstance(v, float) and not math.isfinite(v) else v  # noqa: E731
        return {
            "config": self.config.to_dict(),
            "best_params": dict(self.best_params),
            "best_gain": nan(self.best_gain),
            "best_objective": nan(self.best_objective),
            "best_index": self.best_index,
            "evaluations": [e.to_dict() for e in self.evaluations],
            "spread": [e.to_dict() for e in self.spread],
            "spread_mean": nan(self.spread_mean),
            "spread_std": nan(self.spread_std),
            "best_so_far": self.best_so_far.tolist(),
            "reused": self.reused,
            "table1": table1_comparison(self),
            "seconds": self.seconds,
            "schema_version": self.schema_version,
        }


def objective(result: FlowResult, diverged: str = "last") -> tuple[float, bool]:
    """The score of one flow: (log10 test gain, floored).

    The gain is sigma_0 / sigma at the last completed step. With ``diverged="floor"`` a flow
    that stopped early scores FLOOR; a non-finite gain, or one below 10**FLOOR, scores FLOOR.
    """
    if diverged == "floor" and result.stopped_reason is not None:
        return FLOOR, True
    gain = result.test_gain if result.test_gain is not None else result.test_gain_last
    if not (math.isfinite(gain) and gain > 0) or math.log10(gain) < FLOOR:
        return FLOOR, True
    return math.log10(gain), False


def _evaluate_many(config: TuneConfig, items: list, map_configs: ConfigMap,
                   done: Optional[Callable[[int, float], None]] = None) -> list[Evaluation]:
    """Evaluations of (index, params, seed) items: their flows run together by ``map_configs``;
    ``done(index, objective)`` is called as each flow is done."""
    flows = [config.flow_config(p, s) for _, p, s in items]
    reused = stored_flags(map_configs, flows)

    def each(j: int, result) -> None:
        if done is not None:
            done(items[j][0], objective(result, config.diverged)[0])

    results = map_each(map_configs, run_flow, flows, each)
    keys = [config_key(f, FLOW_SCHEMA) for f in flows]
    return [_evaluation(config, i, p, s, r, u, k) for (i, p, s), r, u, k in zip(items, results, reused, keys)]


def _evaluation(config: TuneConfig, index: int, params: dict, seed: int, result, reused: bool, key: str) -> Evaluation:
    score, floored = objective(result, config.diverged)
    return Evaluation(
        index=index, seed=seed, params=dict(params), objective=score, test_gain=float(result.test_gain_last),
        train_gain=float(result.train_gain_last), steps_done=int(result.steps_done), floored=floored,
        stopped_reason=result.stopped_reason, seconds=float(result.seconds), reused=reused, key=key,
    )


def run_tune(config: TuneConfig, progress: Optional[Progress] = None, map_configs: ConfigMap = serial_map) -> TuneResult:
    """Search the hyperparameters of ``config.kernel``'s flow (section 3.2) and rerun the best.

    Evaluation i runs the flow ``config.flow_config(params_i, evaluation_seed(seed, i))``
    through ``map_configs``, ``config.batch`` at a time. The job runner passes a map that
    makes each flow a cached job (``metricflow.jobs.StoreMap``): a flow that has already run
    is read back, so an interrupted search resumes where it stopped. The default computes
    every flow here and stores nothing.

    Args:
      config: a TuneConfig.
      progress: optional ``progress(step, total, message)``, called after every evaluation
        (total = evaluations + spread_seeds); it may raise to stop the search.
      map_configs: runs the flows (``metricflow.progress.ConfigMap``).

    Returns:
      TuneResult.
    """
    report = progress or _quiet
    start = time.perf_counter()
    total = config.evaluations + config.spread_seeds
    evaluations: list[Evaluation] = []
    scores, spread_scores = {}, {}  # objectives by index as the flows finish (the partial series)

    def partial() -> dict:
        index = sorted(scores)
        values = [scores[i] for i in index]
        panels = [panel("objective per evaluation", "evaluation", "log₁₀ test gain",
                        {"objective": (index, values), "best so far": (index, np.maximum.accumulate(values))})]
        if spread_scores:
            reruns = sorted(spread_scores)
            panels.append(panel("best setting on fresh point sets", "rerun", "log₁₀ test gain",
                                {"objective": (reruns, [spread_scores[k] for k in reruns])}))
        return {"panels": panels}

    def searched(index: int, score: float) -> None:
        scores[index] = score
        publish(progress, partial)

    def spread_done(index: int, score: float) -> None:
        spread_scores[index] = score
        publish(progress, partial)

    def evaluate(index: int, params: dict) -> float:
        evaluations.extend(_evaluate_many(config, [(index, params, evaluation_seed(config.seed, index))], map_configs,
                                          searched))
        return evaluations[-1].objective

    def evaluate_batch(items: list) -> list:
        new = _evaluate_many(config, [(i, p, evaluation_seed(config.seed, i)) for i, p in items], map_configs, searched)
        evaluations.extend(new)
        return [e.objective for e in new]

    def after(trial: Trial) -> None:
        e = evaluations[trial.index]
        best = max(v.objective for v in evaluations[: trial.index + 1])
        how = "reused" if e.reused else f"{e.seconds:.1f} s"
        report(trial.index + 1, total, f"evaluation {trial.index + 1} of {config.evaluations}: "
               f"log10 gain {e.objective:.3f} ({how}); best {best:.3f}")

    dims = config.dimensions()
    if dims:
        bayes_search(evaluate, dims, config.iterations, config.init_points, config.seed, after,
                     batch=config.batch, evaluate_batch=evaluate_batch)
    elif config.batch > 1:  # everything fixed: the same setting on new point sets, in rounds
        for start_index in range(0, config.evaluations, config.batch):
            indices = range(start_index, min(start_index + config.batch, config.evaluations))
            evaluate_batch([(i, {}) for i in indices])
            for i in indices:
                after(Trial(i, {}, {}, evaluations[i].objective))
    else:  # everything fixed: every evaluation is the same setting on a new point set
        for index in range(config.evaluations):
            evaluate(index, {})
            after(Trial(index, {}, {}, evaluations[-1].objective))
    best = int(np.argmax([e.objective for e in evaluations]))
    best_params = {**config.fixed(), **evaluations[best].params}
    spread = []
    if config.batch > 1 and config.spread_seeds:
        params = evaluations[best].params
        spread = _evaluate_many(config, [(k, params, spread_seed(config.seed, k)) for k in range(config.spread_seeds)],
                                map_configs, spread_done)
        report(total, total, f"best setting on {config.spread_seeds} fresh point sets: "
               f"mean log10 gain {np.mean([e.objective for e in spread]):.3f}")
    for k in range(config.spread_seeds if config.batch == 1 else 0):
        spread.extend(_evaluate_many(config, [(k, evaluations[best].params, spread_seed(config.seed, k))], map_configs,
                                     spread_done))
        report(config.evaluations + k + 1, total,
               f"best setting on fresh points {k + 1} of {config.spread_seeds}: log10 gain {spread[-1].objective:.3f}")
    scores = np.array([e.objective for e in spread], dtype=np.float64)
    return TuneResult(
        config=config,
        evaluations=tuple(evaluations),
        best_index=best,
        best_params=best_params,
        best_objective=evaluations[best].objective,
        spread=tuple(spread),
        spread_mean=float(scores.mean()) if len(scores) else math.nan,
        spread_std=float(scores.std(ddof=1)) if len(scores) > 1 else math.nan,
        seconds=time.perf_counter() - start,
    )


def estimate_tune(config: TuneConfig) -> Estimate:
    """Seconds and peak bytes of ``run_tune``: each flow as estimated for a flow job
    (``metricflow.experiments.estimate_flow``, whose ~2 s start-up stands in here for the JIT
    compilation at each new number of points), at the geometric middle of the n_train range
    for time and at its top for memory. Raises if the largest flow is refused."""
    n = next((b for b in config.bounds if b.name == "n_train"), None)
    top = {"n_train": int(n.high)} if n else {}
    mid = {"n_train": int(round(math.sqrt(n.low * n.high)))} if n else {}
    large = estimate_flow(config.flow_config(top, 0))
    typical = estimate_flow(config.flow_config(mid, 0))
    rounds = math.ceil(config.evaluations / config.batch) + math.ceil(config.spread_seeds / config.batch)
    return Estimate(2.0 + rounds * typical.seconds, large.bytes)


# ---- reporting ---------------------------------------------------------------------------

# Labels of the parameters every search may have; a kernel's options are labelled by its spec.
_LABELS = {"n_train": "# Points", "lr": "Learning rate", "normalise": "normalise updates"}


def table1_comparison(result: TuneResult) -> list[dict]:
    """Rows (parameter, paper table 1, searched range, best found) for the kernel's parameters."""
    spec = KERNELS[result.config.kernel]
    paper, labels = spec.table1, {**spec.labels, **_LABELS}
    rows = []
    for b in result.config.bounds:
        rng = f"{b.low:g}" if b.low == b.high else f"{b.low:g} – {b.high:g}"
        if result.config.scale(b.name) == "bool":
            rng = {(0, 1): "off / on", (0, 0): "off", (1, 1): "on"}[(b.low, b.high)]
        best = result.best_params.get(b.name)
        rows.append({
            "parameter": labels.get(b.name, b.name),
            "paper (table 1)": "not stated" if b.name == "normalise" else paper.get(b.name),
            "searched": rng,
            "best found": best,
        })
    return rows


def evaluations_csv(result: TuneResult) -> str:
    """One row per evaluation: index, seed, each parameter, objective, test gain, train gain,
    steps done, floored, stopped (spread reruns follow with phase "spread")."""
    import csv
    import io

    names = [b.name for b in result.config.bounds]
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["phase", "index", "seed", *names, "objective", "test_gain", "train_gain", "steps_done", "floored", "stopped"])
    params = lambda e: [{**result.config.fixed(), **e.params}.get(n, "") for n in names]  # noqa: E731
    for phase, evals in (("search", result.evaluations), ("spread", result.spread)):
        for e in evals:
            writer.writerow([phase, e.index, e.seed, *params(e), repr(e.objective), repr(e.test_gain),
                             repr(e.train_gain), e.steps_done, e.floored, e.stopped_reason or ""])
    return out.getvalue()
