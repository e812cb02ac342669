"""The record of one training run of a finite metric network (section 3.3).

``TrainResult`` is made by ``metricflow.networks.training.train``. Its stored name (job
keys and stored results name a type by module and qualname) is
``metricflow.networks.models.TrainResult``, where it is also importable, so results stored
before this module existed still load.
"""

from dataclasses import dataclass
from typing import Optional

import numpy as np

from metricflow.geometry.measures import Kappa, SigmaReport
from metricflow.networks.config import TrainConfig

__all__ = ["TRAIN_SCHEMA", "TrainResult"]

# Bump when TrainResult's fields or their meaning change (2: reference kappa, both sigma
# conventions with standard errors, training seconds per validation, L-BFGS finish).
TRAIN_SCHEMA = 2


@dataclass(frozen=True, eq=False)
class TrainResult:
    """The record of one training run. E = config.epochs, S snapshots of the metric-NTK,
    P = config.ntk_probe probe points, K = n^2 metric components per point. Every sigma is
    measured on the validation points (never trained on), in two conventions
    (``metricflow.measures.measure_sigma``), each with its standard error:

    * reference-kappa sigma (``val_sigma``): eta = det g / (kappa_ref |Omega|^2) with the
      manifold's one reference kappa (exact at the Fermat point);
    * self-normalised sigma (``val_sigma_self``): kappa from the model's own metric on the
      same points (cymetric's convention; fair only in the FS Kahler class).

    Attributes:
      config: the TrainConfig.
      kappa: the reference Kappa (value, se, exact) of the loss and of ``val_sigma``.
      val_sigma, val_sigma_se: (E+1,) float64, reference-kappa sigma (B.11, CY weights)
        before training ([0]) and after every epoch, and its standard error.
      val_sigma_self, val_sigma_self_se: (E+1,) float64, self-normalised sigma and its error.
      val_kappa_self: (E+1,) float64, kappa of the model's metric on the validation points.
      train_seconds: (E+1,) float64, training time (optimizer steps only) before each record;
        with the symmetric features [0] is the time of ``invariant.prepare_params`` (feature
        scales, base potential), included in every later entry.
      train_loss: (E,) float64, mean train-batch sigma during each epoch.
      gain: val_sigma[0] / val_sigma[-1].
      sigma_fs, sigma_fs_se: reference-kappa sigma of g_FS itself on the validation points.
      nonpd_fraction: (E+1,) float64, fraction of validation points whose metric is not PD.
      lbfgs_sigma, lbfgs_sigma_se: (L,) float64, reference-kappa validation sigma after each
        block of L-BFGS steps (config.lbfgs_every); L = 0 without the L-BFGS finish.
      lbfgs_seconds: (L,) float64, training time before each of those records.
      lbfgs_steps_done: L-BFGS steps taken (fewer than config.lbfgs_steps if a step went
        non-finite: the last finite parameters are kept).
      final: SigmaReport of the final model on the validation points.
      ntk_epochs: (S,) int, epochs of the metric-NTK snapshots.
      ntk_spectra: (S, K P) float64, eigenvalues (ascending) of the (K P) x (K P) metric-NTK.
      ntk_change: (S,) float64, |Theta_t - Theta_0|_F / |Theta_0|_F on the probe set.
      ntk_wasserstein: (S,) float64, Wasserstein distance between the epoch-0 spectrum and
        each snapshot's (fig. 4, right), in eigenvalue units.
      ntk_wasserstein_log: (S,) float64, the same between log10 spectra (floored at 1e-12
        times the largest eigenvalue): shape changes, not only scale.
      ricci_fs, ricci_initial, ricci_final: CY-weighted mean |R| (eq. B.3) on RICCI_POINTS
        validation points for g_FS, the initial and the trained phi model (None for the
        metric model or with ricci=False); ricci_*_se their standard errors.
      params_initial, params_final: the network parameters (pytrees of ndarrays, laid out
        as stax's; ``networks.building.init_params``).
      n_params: number of parameters.
      epoch_seconds: (E,) float64, wall time of each epoch (training only).
      ntk_seconds: total time spent on metric-NTK snapshots.
      seconds: everything.
      load_average: (start, end) 1-minute load average of the machine (timings are only
        comparable at similar load).
      schema_version: TRAIN_SCHEMA.
    """

    config: TrainConfig
    kappa: Kappa
    val_sigma: np.ndarray
    val_sigma_se: np.ndarray
    val_sigma_self: np.ndarray
    val_sigma_self_se: np.ndarray
    val_kappa_self: np.ndarray
    train_seconds: np.ndarray
    train_loss: np.ndarray
    gain: float
    sigma_fs: float
    sigma_fs_se: float
    nonpd_fraction: np.ndarray
    lbfgs_sigma: np.ndarray
    lbfgs_sigma_se: np.ndarray
    lbfgs_seconds: np.ndarray
    lbfgs_steps_done: int
    final: SigmaReport
    ntk_epochs: np.ndarray
    ntk_spectra: np.ndarray
    ntk_change: np.ndarray
    ntk_wasserstein: np.ndarray
    ntk_wasserstein_log: np.ndarray
    ricci_fs: Optional[float]
    ricci_fs_se: Optional[float]
    ricci_initial: Optional[float]
    ricci_initial_se: Optional[float]
    ricci_final: Optional[float]
    ricci_final_se: Optional[float]
    params_initial: object
    params_final: object
    n_params: int
    epoch_seconds: np.ndarray
    ntk_seconds: float
    seconds: float
    load_average: tuple
    schema_version: int = TRAIN_SCHEMA

    def summary(self) -> dict:
        """The JSON of ``metricflow train --json``."""
        floats = lambda a: [float(v) for v in a]  # noqa: E731
        return {
            "model": self.config.model,
            "kappa": float(self.kappa.value),
            "kappa_se": float(self.kappa.se),
            "kappa_exact": bool(self.kappa.exact),
            "val_sigma": floats(self.val_sigma),
            "val_sigma_se": floats(self.val_sigma_se),
            "val_sigma_self": floats(self.val_sigma_self),
            "val_sigma_self_se": floats(self.val_sigma_self_se),
            "val_kappa_self": floats(self.val_kappa_self),
            "train_seconds": floats(self.train_seconds),
            "train_loss": floats(self.train_loss),
            "nonpd_fraction": floats(self.nonpd_fraction),
            "lbfgs_sigma": floats(self.lbfgs_sigma),
            "lbfgs_sigma_se": floats(self.lbfgs_sigma_se),
            "lbfgs_seconds": floats(self.lbfgs_seconds),
            "lbfgs_steps_done": int(self.lbfgs_steps_done),
            "final": self.final.to_dict(),
            "gain": float(self.gain),
            "sigma_fs": float(self.sigma_fs),
            "sigma_fs_se": float(self.sigma_fs_se),
            "ntk_epochs": [int(e) for e in self.ntk_epochs],
            "ntk_wasserstein": floats(self.ntk_wasserstein),
            "ntk_wasserstein_log": floats(self.ntk_wasserstein_log),
            "ntk_change": floats(self.ntk_change),
            "ricci_fs": self.ricci_fs,
            "ricci_fs_se": self.ricci_fs_se,
            "ricci_initial": self.ricci_initial,
            "ricci_initial_se": self.ricci_initial_se,
            "ricci_final": self.ricci_final,
            "ricci_final_se": self.ricci_final_se,
            "n_params": int(self.n_params),
            "epoch_seconds": floats(self.epoch_seconds),
            "seconds": float(self.seconds),
            "load_average": floats(self.load_average),
            "config": self.config.to_dict(),
        }


# The name job keys and stored results know it by (see the module docstring).
TrainResult.__module__ = "metricflow.networks.models"
