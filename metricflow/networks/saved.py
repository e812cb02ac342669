"""Trained metric networks as files: save, load, use and evaluate on fresh points.

The file is a NumPy ``.npz`` archive (a zip of ``.npy`` arrays), read with
``allow_pickle=False``, so loading one never runs code. It holds:

==================  =====================================================================
``format``          the string ``"metricflow.trained_model"``
``format_version``  int64, ``FORMAT_VERSION`` (a newer version is refused with a message)
``config``          the TrainConfig as a JSON string (``TrainConfig.to_dict``)
``summary``         the training summary as a JSON string (``TrainResult.summary`` without
                    the config), or ``{}``
``params/<i>/<j>``  float64 arrays, the parameters by their position in the pytree
                    (layer i, array j: 0 = weights W, 1 = bias b)
==================  =====================================================================

Version 2 (written only for the phi model with symmetric features; every other model is
still written as version 1, so older readers keep reading it): the parameters are a dict
(``networks.invariant``), stored as ``params/net/<i>/<j>`` (the network, as above),
``params/shift``, ``params/scale`` and, with a base potential, ``params/base``.

Why .npz: any NumPy (or any zip + .npy reader, in any language) opens it, it stores float64
exactly, it is one file, and unlike a pickle it cannot execute code when loaded. The
parameter layout is checked against the architecture the config describes, so a file whose
arrays do not fit its config is refused.

Example:
  >>> result = train(TrainConfig(model="phi", n_points=20_000, epochs=5))
  >>> save_model(result, "phi.npz")
  >>> model = load_model("phi.npz")
  >>> g, chart = model.metric(z)          # z: (N, 5) complex128 points on the quintic
  >>> phi = model.potential(z)            # (N,) float64
  >>> evaluate_model(model, 100_000, seed=7).report.sigma
"""

from __future__ import annotations

import io
import json
import os
import tempfile
import time
import zipfile
from dataclasses import dataclass
from typing import NamedTuple, Optional

import numpy as np

from metricflow._jax import jax
from metricflow.errors import MetricflowError, check_count
from metricflow.geometry.measures import SigmaReport, eta as eta_of, measure_sigma, weighted_mean_se
from metricflow.networks.models import (
    RICCI_POINTS,
    TrainConfig,
    init_params,
    metric_fn,
    model_input,
    nonpd_fraction,
    potential_fn,
    ricci_scalar,
)
from metricflow.geometry.points import Points, SampleConfig, points_from_coordinates, sample_points
from metricflow.geometry.reference import reference_kappa

__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "LocalMetric",
    "TrainedModel",
    "EvaluateResult",
    "model_from_result",
    "save_model",
    "model_bytes",
    "load_model",
    "evaluate_model",
]

FORMAT = "metricflow.trained_model"
FORMAT_VERSION = 2

# Largest |p(z)| / (sum of |monomials|) accepted for a point given to a model: loose enough
# for coordinates written out and read back, tight enough to catch points off X.
POINT_TOL = 1e-8
# Points evaluated at once by a model's methods.
CHUNK = 5000


class LocalMetric(NamedTuple):
    """The metric of N points, each in its own chart (section 3.1).

    g: (N, n, n) complex128 Hermitian, g_ab in the local coordinates of the chart.
    chart: (N, 2) int64, the chart of each point: (scale index, eliminated index); the local
      coordinates are the other n homogeneous coordinates, in increasing order, with
      z[scale] = 1.
    """

    g: np.ndarray
    chart: np.ndarray


@dataclass(frozen=True, eq=False)
class TrainedModel:
    """A trained metric network: its TrainConfig and parameters (a pytree of float64, laid
    out as stax lays them out: ``networks.building.init_params``).

    Attributes:
      config: the TrainConfig it was trained with (model, architecture, manifold).
      params: the parameters.
      summary: the training summary stored with it (may be empty).
    """

    config: TrainConfig
    params: object
    summary: dict

    @property
    def manifold(self):
        return self.config.manifold

    def points(self, z) -> Points:
        """Chart data of N points given by (N, d) complex homogeneous coordinates on X."""
        m = self.manifold
        z = np.asarray(z)
        if z.ndim != 2 or z.shape[1] != m.degree or not np.issubdtype(z.dtype, np.number):
            raise MetricflowError(f"expected (N, {m.degree}) complex coordinates of points on the {m.name}, got shape {z.shape}")
        z = z.astype(np.complex128)
        if not np.all(np.isfinite(z)) or np.any(np.max(np.abs(z), axis=1) == 0):
            raise MetricflowError("coordinates must be finite and not all zero")
        scaled = z / z[np.arange(len(z)), np.argmax(np.abs(z), axis=1)][:, None]
        residual = np.abs(m.polynomial(scaled)) / m.monomial_scale(scaled)
        if np.any(residual > POINT_TOL):
            worst = int(np.argmax(residual))
            raise MetricflowError(
                f"point {worst} is not on the {m.name} (psi={m.psi:g}): relative |p(z)| {residual[worst]:.1e} > {POINT_TOL:g}"
            )
        return points_from_coordinates(m, z)

    def _chunks(self, fn, pts: Points):
        parts = [np.asarray(fn(pts.subset(np.arange(s, min(s + CHUNK, len(pts)))))) for s in range(0, len(pts), CHUNK)]
        return np.concatenate(parts) if parts else np.zeros((0,))

    def metric_at(self, pts: Points) -> np.ndarray:
        """(N, n, n) complex128: the model's metric at chart data ``pts``, in their charts."""
        f = _jitted(self.config, "metric")
        return self._chunks(lambda p: f(self.params, model_input(p)), pts)

    def metric(self, z) -> LocalMetric:
        """The model's Hermitian metric at N points, in the local chart of each point.

        Args:
          z: (N, d) complex128 homogeneous coordinates of points on X (any scaling).

        Returns:
          LocalMetric(g (N, n, n) complex128, chart (N, 2) int64).
        """
        pts = self.points(z)
        return LocalMetric(self.metric_at(pts), np.stack([pts.scale_index, pts.elim_index], axis=1).astype(np.int64))

    def potential(self, z) -> np.ndarray:
        """phi at N points for the phi model: g = g_FS + d dbar phi (eq. B.6).

        Args:
          z: (N, d) complex128 homogeneous coordinates (any scaling; phi is a function on
            P^(d-1), so the points need not be on X).

        Returns:
          (N,) float64.
        """
        if self.config.model != "phi":
            raise MetricflowError(f"only the phi model has a potential; this is a {self.config.model!r} model")
        z = np.asarray(z, dtype=np.complex128)
        d = self.manifold.degree
        if z.ndim != 2 or z.shape[1] != d:
            raise MetricflowError(f"expected (N, {d}) complex coordinates, got shape {z.shape}")
        f = _jitted(self.config, "potential")
        zr = np.concatenate([z.real, z.imag], axis=1)
        parts = [np.asarray(f(self.params, zr[s : s + CHUNK])) for s in range(0, len(zr), CHUNK)]
        return np.concatenate(parts) if parts else np.zeros(0)

    def eta(self, z) -> np.ndarray:
        """eta = det g / (kappa_ref |Omega|^2) (eq. B.11) at N points on X; 1 is Ricci-flat.

        Args:
          z: (N, d) complex128 homogeneous coordinates of points on X.

        Returns:
          (N,) float64.
        """
        pts = self.points(z)
        return np.asarray(eta_of(self.metric_at(pts), pts.omega_sq, reference_kappa(self.manifold).value))


_JIT: dict = {}


def _jitted(config: TrainConfig, kind: str):
    """The jitted metric or potential function of ``config``, compiled once per process."""
    key = (config, kind)
    if key not in _JIT:
        d = config.manifold.degree
        f = metric_fn(config, d - 2, d) if kind == "metric" else potential_fn(config, d - 2, d)
        _JIT[key] = jax.jit(f)
    return _JIT[key]


# ---- files -----------------------------------------------------------------------------


def _param_entries(params) -> dict:
    """{"params/<i>/<j>": ndarray} for the parameter pytree (None leaves are absent)."""
    out = {}
    for path, leaf in jax.tree_util.tree_flatten_with_path(params)[0]:
        key = "params/" + "/".join(str(getattr(k, "idx", getattr(k, "key", k))) for k in path)
        out[key] = np.asarray(leaf, dtype=np.float64)
    return out


def _version_of(config: TrainConfig) -> int:
    """The oldest format version that holds this config's model (2: symmetric features)."""
    return 2 if config.features == "symmetric" else 1


def model_from_result(result) -> TrainedModel:
    """The trained model of a TrainResult (its final parameters)."""
    summary = result.summary()
    summary.pop("config", None)
    return TrainedModel(result.config, result.params_final, summary)


def model_bytes(model) -> bytes:
    """The .npz file of a TrainedModel (or a TrainResult) as bytes (for a download)."""
    if not isinstance(model, TrainedModel):
        model = model_from_result(model)
    arrays = {
        "format": np.array(FORMAT),
        "format_version": np.array(_version_of(model.config), dtype=np.int64),
        "config": np.array(json.dumps(model.config.to_dict())),
        "summary": np.array(json.dumps(model.summary)),
        **_param_entries(model.params),
    }
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


def save_model(model, path) -> str:
    """Write a TrainedModel (or a TrainResult's final model) to ``path`` (.npz, atomically).

    Returns:
      the path written.
    """
    data = model_bytes(model)
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    try:
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=".model-", suffix=".npz")
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except OSError as err:
        raise MetricflowError(f"could not write the model to {path}: {err.strerror or err}") from None
    return path


def load_model(path) -> TrainedModel:
    """Read a model written by ``save_model`` (or ``train --save``); never runs code.

    Args:
      path: the .npz file.

    Returns:
      TrainedModel.

    Raises:
      MetricflowError: with one line, if the file is missing, corrupt, not a metricflow
        model, from a newer format, or its arrays do not fit its config.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise MetricflowError(f"no model file at {path}")
    if not zipfile.is_zipfile(path):
        raise MetricflowError(f"{path} is not a .npz model file (not a zip archive); save one with train --save")
    try:
        npz = np.load(path, allow_pickle=False)
        if not isinstance(npz, np.lib.npyio.NpzFile):
            raise ValueError("a single .npy array, not an .npz archive")
        with npz:
            entries = {k: npz[k] for k in npz.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, KeyError) as err:
        reason = " ".join(str(err).split())[:80]
        raise MetricflowError(f"{path} is not a readable .npz model file ({type(err).__name__}: {reason})") from None
    try:
        fmt = str(entries["format"][()])
    except (KeyError, TypeError, IndexError):
        fmt = None
    if fmt != FORMAT:
        raise MetricflowError(f"{path} is not a metricflow trained model (no format entry {FORMAT!r})")
    try:
        version = int(entries["format_version"][()])
        config_text = str(entries["config"][()])
        summary_text = str(entries["summary"][()]) if "summary" in entries else "{}"
    except (KeyError, TypeError, ValueError):
        raise MetricflowError(f"{path}: a metricflow model file needs format_version and config entries") from None
    if version > FORMAT_VERSION or version < 1:
        raise MetricflowError(f"{path} has model format version {version}; this metricflow reads versions 1 to {FORMAT_VERSION}")
    try:
        config = TrainConfig.from_dict(json.loads(config_text))
        summary = json.loads(summary_text)
    except json.JSONDecodeError as err:
        raise MetricflowError(f"{path}: the config is not valid JSON ({err.msg})") from None
    except TypeError as err:
        raise MetricflowError(f"{path}: bad config ({err})") from None
    d = config.manifold.degree
    template = init_params(config, jax.random.PRNGKey(0), d - 2, d)
    expected = _param_entries(template)
    given = {k: v for k, v in entries.items() if k.startswith("params/")}
    if set(given) != set(expected):
        missing, extra = sorted(set(expected) - set(given)), sorted(set(given) - set(expected))
        raise MetricflowError(f"{path}: parameters do not fit the config's network (missing {missing[:3]}, unexpected {extra[:3]})")
    for key, ref in expected.items():
        a = given[key]
        if a.shape != ref.shape or a.dtype != np.float64:
            raise MetricflowError(f"{path}: parameter {key} is {a.dtype}{list(a.shape)}, the config's network needs float64{list(ref.shape)}")
        if not np.all(np.isfinite(a)):
            raise MetricflowError(f"{path}: parameter {key} has non-finite values")
    # _param_entries lists the leaves in the pytree's flattening order
    params = jax.tree_util.tree_unflatten(jax.tree_util.tree_structure(template), [given[k] for k in expected])
    return TrainedModel(config, params, summary if isinstance(summary, dict) else {})


# ---- evaluation on fresh points ----------------------------------------------------------


@dataclass(frozen=True, eq=False)
class EvaluateResult:
    """A trained model measured on fresh points.

    Attributes:
      report: SigmaReport (both sigma conventions with standard errors, kappa).
      nonpd_fraction: fraction of the points where the metric is not positive definite.
      ricci, ricci_se: CY-weighted mean |R| (eq. B.3) on the first ricci_points points and
        its standard error (phi model only; None otherwise or with ricci_points = 0).
      ricci_points: points of the Ricci measure.
      n_points, seed: the fresh sample.
      seconds: wall time.
    """

    config: TrainConfig
    report: SigmaReport
    nonpd_fraction: float
    ricci: Optional[float]
    ricci_se: Optional[float]
    ricci_points: int
    n_points: int
    seed: int
    seconds: float

    def to_dict(self) -> dict:
        """The JSON of ``metricflow evaluate --json``."""
        return {
            **self.report.to_dict(),
            "model": self.config.model,
            "nonpd_fraction": self.nonpd_fraction,
            "ricci": self.ricci,
            "ricci_se": self.ricci_se,
            "ricci_points": self.ricci_points,
            "points": self.n_points,
            "seed": self.seed,
            "seconds": self.seconds,
            "config": self.config.to_dict(),
        }


def evaluate_model(model: TrainedModel, n_points: int, seed: int, ricci_points: int = RICCI_POINTS) -> EvaluateResult:
    """sigma (both conventions, eq. B.11), kappa, the non-PD fraction and (phi) the Ricci
    measure of ``model`` on ``n_points`` fresh points drawn from ``seed``.

    The sample must not be the training sample: ``seed`` equal to the training seed is refused.

    Args:
      model: a TrainedModel.
      n_points: fresh points.
      seed: their seed (not the training seed).
      ricci_points: points of the Ricci measure (phi model; 0 = skip; four derivatives of
        the network, about 40 s to compile).

    Returns:
      EvaluateResult.
    """
    start = time.perf_counter()
    n_points = check_count(n_points, "points", minimum=10)
    seed = check_count(seed, "seed", minimum=0, maximum=2**63)
    ricci_points = check_count(ricci_points, "Ricci points", minimum=0, maximum=10_000)
    if seed == model.config.seed:
        raise MetricflowError(
            f"seed {seed} is the model's training seed: those would be its training points; choose another --seed"
        )
    pts = sample_points(SampleConfig(model.manifold, n_points, seed))
    g = model.metric_at(pts)
    report = measure_sigma(g, pts.omega_sq, pts.weights, reference_kappa(model.manifold))
    ricci = ricci_se = None
    used = 0
    if model.config.model == "phi" and ricci_points:
        used = min(ricci_points, n_points)
        sub = pts.subset(np.arange(used))
        ricci, ricci_se = weighted_mean_se(np.abs(ricci_scalar(model.config, model.params, sub)), sub.weights)
    return EvaluateResult(
        config=model.config, report=report, nonpd_fraction=nonpd_fraction(g), ricci=ricci, ricci_se=ricci_se,
        ricci_points=used, n_points=n_points, seed=seed, seconds=time.perf_counter() - start,
    )
