"""The moduli dependence along the Dwork family: sigma of g_FS, of Donaldson's balanced
metric g_k and (optionally) of the phi network after a fixed budget, as functions of psi:
one Donaldson run and one phi-network run per psi, and optionally one phi network
conditioned on psi (``metricflow.networks.family``) trained across all of them, all through
one ``map_configs`` call."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar, Optional

import numpy as np

from metricflow.constraints import Count, Flag, validate
from metricflow.errors import MetricflowError
from metricflow.estimates import Estimate
from metricflow.flows.donaldson import MAX_K, SWEEP_PSIS, DonaldsonConfig, estimate_donaldson, run_donaldson
from metricflow.geometry.manifolds import Manifold, family_psis
from metricflow.networks.family import FamilyResult, FamilyTrainConfig, estimate_family, train_family
from metricflow.networks.models import TrainConfig, TrainResult, estimate_train, train
from metricflow.progress import ConfigMap, Progress, map_each, no_progress, panel, publish, serial_map

__all__ = [
    "DONALDSON_SWEEP_SCHEMA",
    "DonaldsonSweepConfig",
    "DonaldsonSweepResult",
    "run_donaldson_sweep",
    "run_sweep_config",
    "estimate_donaldson_sweep",
    "PHI_VAL_FRACTION",
]

# Bump when DonaldsonSweepResult's fields or their meaning change (2: the phi network's sigma;
# 3: the psi-conditioned network's family_* fields). The config's family flag is left out of
# its canonical JSON at its default, so only the schema moves the keys: a sweep stored before
# is recomputed, from its stored pieces (each one its own cached job), without a warning.
DONALDSON_SWEEP_SCHEMA = 3

# The fraction of the phi network's points held out: its sigma is measured on them.
PHI_VAL_FRACTION = 0.2


# ---- the moduli sweep -----------------------------------------------------------------


@dataclass(frozen=True)
class DonaldsonSweepConfig:
    """sigma of g_FS and of the balanced g_k along the Dwork family, one Donaldson job per psi.

    Attributes:
      psis: the complex structure values (none with psi^5 = 1).
      k: the degree of the balanced metric.
      n_points, n_test, seed, tol, max_iterations: as in DonaldsonConfig.
      degree: the Dwork degree d (5: quintics).
      phi_epochs: also train the phi network (Kahler, g_FS + d dbar phi, 3 x 64, Adam) at each
        psi for this many epochs; 0 = off.
      phi_points: the phi network's points, PHI_VAL_FRACTION of them held out for its sigma.
      family: also train one phi network conditioned on psi (``FamilyTrainConfig``: psi as
        an extra input) across all the psis, on the union of the per-psi networks' train
        points (the same points and validation splits, psi by psi) for the same phi_epochs:
        P times the optimizer steps of one per-psi network. Needs phi_epochs > 0.
    """

    psis: tuple = SWEEP_PSIS
    k: int = 3
    n_points: int = 20_000
    n_test: int = 20_000
    seed: int = 0
    tol: float = 1e-6
    max_iterations: int = 200
    degree: int = 5
    # Left out of the canonical JSON at their defaults: a sweep without the network keeps it.
    phi_epochs: int = field(default=0, metadata={"key": "omit-default"})
    phi_points: int = field(default=5000, metadata={"key": "omit-default"})
    family: bool = field(default=False, metadata={"key": "omit-default"})

    # As in DonaldsonConfig; the degree is checked by Manifold, the cross-field checks by
    # DonaldsonConfig and TrainConfig (configs below).
    constraints: ClassVar[dict] = {
        "k": Count("degree k", maximum=MAX_K),
        **{name: DonaldsonConfig.constraints[name] for name in ("n_points", "n_test", "seed", "tol", "max_iterations")},
        "phi_epochs": Count("phi epochs", minimum=0, maximum=10_000),
        "phi_points": Count("phi points", minimum=50, maximum=10_000_000),
        "family": Flag(),
    }

    def __post_init__(self):
        validate(self)
        object.__setattr__(self, "psis", family_psis(self.psis, self.degree))
        if self.family and self.phi_epochs == 0:
            raise MetricflowError("the psi-conditioned network (family) trains for phi_epochs; give phi_epochs > 0")
        self.configs()  # validates psi and the sizes, one line each

    def donaldson_configs(self) -> list[DonaldsonConfig]:
        """The per-psi DonaldsonConfigs of degrees (1, k)."""
        ks = (1,) if self.k == 1 else (1, self.k)
        return [
            DonaldsonConfig(Manifold(self.degree, p), ks, self.n_points, self.n_test, self.seed,
                            tol=self.tol, max_iterations=self.max_iterations)
            for p in self.psis
        ]

    def phi_configs(self) -> list[TrainConfig]:
        """The per-psi phi-network TrainConfigs (empty when phi_epochs is 0)."""
        if self.phi_epochs == 0:
            return []
        return [
            TrainConfig(model="phi", n_points=self.phi_points, epochs=self.phi_epochs,
                        val_fraction=PHI_VAL_FRACTION, ricci=False, seed=self.seed,
                        manifold=Manifold(self.degree, p))
            for p in self.psis
        ]

    def family_configs(self) -> list[FamilyTrainConfig]:
        """The psi-conditioned network, one config (empty when family is off): the per-psi
        phi networks' points, seed and hyperparameters (its ``member_configs()`` are
        ``phi_configs()``), trained on their union."""
        if not self.family:
            return []
        return [FamilyTrainConfig(psis=self.psis, degree=self.degree, n_points=self.phi_points,
                                  epochs=self.phi_epochs, val_fraction=PHI_VAL_FRACTION, seed=self.seed)]

    def configs(self) -> list:
        """Every piece of the sweep: the DonaldsonConfigs, the phi TrainConfigs, then the
        psi-conditioned network's FamilyTrainConfig."""
        return self.donaldson_configs() + self.phi_configs() + self.family_configs()


@dataclass(frozen=True, eq=False)
class DonaldsonSweepResult:
    """sigma along the family. P values of psi; arrays are (P,) float64.

    Attributes:
      config: the DonaldsonSweepConfig.
      psis: (P,) complex128.
      sigma_fs, sigma_fs_se: g_FS on each psi's test points.
      sigma, sigma_se: the balanced g_k.
      sigma_self, sigma_self_se: the balanced g_k, self-normalised.
      kappa, kappa_se: the reference kappa of each psi.
      iterations: (P,) int64 at degree k.
      seconds: (P,) float64, wall time of each psi's Donaldson job.
      phi_sigma, phi_sigma_se: (P,) float64, the phi network's reference-kappa sigma on its
        validation points after the last epoch (``TrainResult.val_sigma[-1]``); NaN when
        the config's phi_epochs is 0.
      phi_seconds: (P,) float64, its training seconds (optimizer steps only); NaN when off.
      family_sigma, family_sigma_se: (P,) float64, the psi-conditioned network's
        reference-kappa sigma on each psi's validation points (the per-psi networks' ones)
        after the last epoch (``FamilyResult.val_sigma[:, -1]``); NaN when family is off.
      family_seconds: float, its training seconds (optimizer steps only) for all psis at
        once: P times the steps of one per-psi network; NaN when off.
    """

    config: DonaldsonSweepConfig
    psis: np.ndarray
    sigma_fs: np.ndarray
    sigma_fs_se: np.ndarray
    sigma: np.ndarray
    sigma_se: np.ndarray
    sigma_self: np.ndarray
    sigma_self_se: np.ndarray
    kappa: np.ndarray
    kappa_se: np.ndarray
    iterations: np.ndarray
    seconds: np.ndarray
    phi_sigma: Optional[np.ndarray] = None  # None: NaN at every psi (the network is off)
    phi_sigma_se: Optional[np.ndarray] = None
    phi_seconds: Optional[np.ndarray] = None
    family_sigma: Optional[np.ndarray] = None  # None: NaN at every psi (the conditioned network is off)
    family_sigma_se: Optional[np.ndarray] = None
    family_seconds: Optional[float] = None

    def __post_init__(self):
        for name in ("phi_sigma", "phi_sigma_se", "phi_seconds", "family_sigma", "family_sigma_se"):
            if getattr(self, name) is None:
                object.__setattr__(self, name, np.full(len(self.psis), np.nan))
        if self.family_seconds is None:
            object.__setattr__(self, "family_seconds", float("nan"))

    def summary(self) -> dict:
        """JSON-ready: one row per psi (with phi_sigma, phi_sigma_se, phi_seconds when the
        phi network ran, and family_sigma, family_sigma_se when the psi-conditioned one did;
        its family_seconds, for all psis together, is at the top level)."""
        rows = []
        for i, p in enumerate(self.psis):
            rows.append({
                "psi": [float(p.real), float(p.imag)], "sigma_fs": float(self.sigma_fs[i]),
                "sigma_fs_se": float(self.sigma_fs_se[i]), "sigma": float(self.sigma[i]),
                "sigma_se": float(self.sigma_se[i]), "sigma_self": float(self.sigma_self[i]),
                "sigma_self_se": float(self.sigma_self_se[i]), "kappa": float(self.kappa[i]),
                "kappa_se": float(self.kappa_se[i]), "iterations": int(self.iterations[i]),
                "seconds": float(self.seconds[i]),
            })
            if self.config.phi_epochs:
                rows[-1].update(phi_sigma=float(self.phi_sigma[i]), phi_sigma_se=float(self.phi_sigma_se[i]),
                                phi_seconds=float(self.phi_seconds[i]))
            if self.config.family:
                rows[-1].update(family_sigma=float(self.family_sigma[i]), family_sigma_se=float(self.family_sigma_se[i]))
        c = self.config
        out = {"k": c.k, "points": c.n_points, "test_points": c.n_test, "seed": c.seed, "per_psi": rows}
        if c.phi_epochs:
            out.update(phi_epochs=c.phi_epochs, phi_points=c.phi_points)
        if c.family:
            out.update(family=True, family_seconds=float(self.family_seconds))
        return out


def run_sweep_config(config):
    """Run one piece of the sweep (the ``map_configs`` function): a DonaldsonConfig with
    ``run_donaldson``, a TrainConfig with ``train``, a FamilyTrainConfig with ``train_family``."""
    if isinstance(config, DonaldsonConfig):
        return run_donaldson(config)
    if isinstance(config, TrainConfig):
        return train(config)
    if isinstance(config, FamilyTrainConfig):
        return train_family(config)
    raise MetricflowError(f"the Donaldson sweep runs no {type(config).__name__}")


def _sweep_partial(config: DonaldsonSweepConfig, n_phi: int, done: dict) -> dict:
    """The sweep's partial series: sigma per psi of the pieces done so far (``done``: piece
    index -> result, in the order of ``config.configs()``)."""
    P = len(config.psis)
    psis = sorted(i for i in done if i < P)
    curves = {"g_FS": (psis, [done[i].sigma_fs for i in psis]),
              f"balanced g_{config.k}": (psis, [done[i].sigma[-1] for i in psis])}
    if n_phi:
        nets = sorted(i - P for i in done if P <= i < P + n_phi)
        curves[f"φ network, {config.phi_epochs} epochs"] = (nets, [done[P + i].val_sigma[-1] for i in nets])
    if P + n_phi in done:
        curves["ψ-conditioned φ network"] = (range(P), done[P + n_phi].val_sigma[:, -1])
    name = lambda p: f"{p.real:g}" + (f"{p.imag:+g}i" if p.imag else "")  # noqa: E731
    return {"panels": [panel("σ per ψ", "ψ (its number; values in the note)", "σ", curves, log_y=True)],
            "note": "ψ: " + ", ".join(name(complex(p)) for p in config.psis)}


def run_donaldson_sweep(
    config: DonaldsonSweepConfig, progress: Optional[Progress] = None, map_configs: ConfigMap = serial_map
) -> DonaldsonSweepResult:
    """One Donaldson run (and one phi-network run) per psi, and optionally one psi-conditioned
    network across them; then sigma_FS(psi), sigma_k(psi) and the networks' sigma(psi).

    Args:
      config: the sweep.
      progress: optional ``progress(done, total, message)``.
      map_configs: runs the DonaldsonConfigs, the phi TrainConfigs and the FamilyTrainConfig in one call
        (``metricflow.progress.ConfigMap``) with ``run_sweep_config``; the job runner passes
        one that makes each a cached job, run in parallel.
    """
    report = progress or no_progress
    P = len(config.psis)
    what = " and the phi network" if config.phi_epochs else ""
    what += " (and one conditioned on psi)" if config.family else ""
    report(0, 1, f"Donaldson's algorithm{what} at {P} values of psi")
    n_phi = len(config.phi_configs())
    done = {}

    def each(i: int, result) -> None:
        done[i] = result
        publish(progress, lambda: _sweep_partial(config, n_phi, done))

    pieces = map_each(map_configs, run_sweep_config, config.configs(), each)
    report(1, 1, "done")
    results, nets, family = pieces[:P], pieces[P : P + n_phi], pieces[P + n_phi :]
    if not all(isinstance(r, TrainResult) for r in nets) or not all(isinstance(r, FamilyResult) for r in family):
        raise MetricflowError("the sweep's map_configs returned the results out of order")
    last = lambda r, name: float(getattr(r, name)[-1])  # noqa: E731
    arr = lambda vals, dtype=np.float64: np.asarray(vals, dtype=dtype)  # noqa: E731
    return DonaldsonSweepResult(
        config=config, psis=arr(config.psis, complex),
        sigma_fs=arr([r.sigma_fs for r in results]), sigma_fs_se=arr([r.sigma_fs_se for r in results]),
        sigma=arr([last(r, "sigma") for r in results]), sigma_se=arr([last(r, "sigma_se") for r in results]),
        sigma_self=arr([last(r, "sigma_self") for r in results]),
        sigma_self_se=arr([last(r, "sigma_self_se") for r in results]),
        kappa=arr([r.kappa for r in results]), kappa_se=arr([r.kappa_se for r in results]),
        iterations=arr([int(r.iterations[-1]) for r in results], np.int64),
        seconds=arr([r.total_seconds for r in results]),
        phi_sigma=arr([r.val_sigma[-1] for r in nets]) if nets else None,
        phi_sigma_se=arr([r.val_sigma_se[-1] for r in nets]) if nets else None,
        phi_seconds=arr([r.train_seconds[-1] for r in nets]) if nets else None,
        family_sigma=arr(family[0].val_sigma[:, -1]) if family else None,
        family_sigma_se=arr(family[0].val_sigma_se[:, -1]) if family else None,
        family_seconds=float(family[0].train_seconds[-1]) if family else None,
    )


def estimate_donaldson_sweep(config: DonaldsonSweepConfig):
    """The sum of the per-psi estimates (they may run in parallel), and the largest memory."""
    parts = ([estimate_donaldson(c) for c in config.donaldson_configs()] + [estimate_train(c) for c in config.phi_configs()]
             + [estimate_family(c) for c in config.family_configs()])
    return Estimate(float(sum(p.seconds for p in parts)), int(max(p.bytes for p in parts)))
