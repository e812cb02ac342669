"""The config of one training run of a finite metric network (section 3.3).

``TrainConfig`` only stores and validates its fields; ``metricflow.networks.training.train``
runs it. Its stored name (job keys and stored results name a type by module and qualname)
is ``metricflow.networks.models.TrainConfig``, where it is also importable, so the keys of
results stored before this module existed are unchanged.
"""

from dataclasses import dataclass, field, fields
from typing import ClassVar, Optional

from metricflow.constraints import SEED, Count, Flag, Maybe, OneOf, Positive, validate
from metricflow.errors import MetricflowError
from metricflow.geometry.manifolds import Manifold
from metricflow.geometry.points import SampleConfig, check_test_sample
from metricflow.networks.mlp import ACTIVATIONS, PARAMETERIZATIONS

__all__ = ["MODELS", "FEATURES", "MAX_BASE_K", "ACTIVATIONS", "OPTIMIZERS", "PARAMETERIZATIONS", "READOUT_STD", "DEFAULT_ACTIVATION", "TrainConfig"]

MODELS = ("metric", "phi")
# What the phi model's network reads (``networks.invariant``), and the largest degree of its
# base potential (the invariant algebraic space needs k < 5).
FEATURES = ("projective", "symmetric")
MAX_BASE_K = 4
OPTIMIZERS = ("adam", "sgd")

# Default readout scale (W_std of the last layer): small, so the metric starts near g_FS.
READOUT_STD = {"metric": 0.1, "phi": 0.05}
DEFAULT_ACTIVATION = {"metric": "relu", "phi": "gelu"}


@dataclass(frozen=True)
class TrainConfig:
    """One training run of a finite metric network (section 3.3). Validated; computes nothing.

    Attributes:
      model: "metric" (g_FS o (1 + H)) or "phi" (g_FS + d dbar phi, Kahler).
      n_points: points sampled (train + validation); the literature uses 10^5.
      epochs: passes over the train points (the literature: 50).
      width, depth: hidden layers of ``width`` units (baseline 3 x 64).
      activation: "relu", "gelu" or "erf"; None = relu for metric, gelu for phi. phi needs
        a smooth one (relu has d dbar phi = 0 almost everywhere).
      parameterization: "standard" or "ntk" (as in stax; ntk for the width sweep).
      optimizer: "adam" (optax) or "sgd" (plain gradient descent, for the lazy limit).
      lr: initial learning rate.
      lr_final_fraction: the rate decays (cosine) to lr * lr_final_fraction at the last step;
        1 keeps it constant.
      warmup_epochs: the rate first rises linearly from 0 to lr over this many epochs.
      batch_size: points per step (the last partial batch of an epoch is dropped); None =
        min(200, train points).
      val_fraction: fraction of the points held out for validation.
      readout_std: W_std of the readout layer; None = READOUT_STD of the model.
      ntk_probe: validation points on which the metric-NTK is recorded (0 = none).
      ntk_every: record the metric-NTK every this many epochs (and at 0 and the last).
      ntk_implementation: how the metric-NTK is computed (``metric_ntk``): 1, jacobian
        contraction, or 2, NTK-vector products (3 is refused).
      lbfgs_steps: full-batch L-BFGS steps after the epochs (0 = none).
      lbfgs_points: train points of the L-BFGS loss (the first ones of the train split).
      lbfgs_every: validate every this many L-BFGS steps.
      ricci: measure the Ricci scalar (phi model only) before and after training.
      seed: sampling, split, initialisation and shuffling all derive from it.
      manifold: the hypersurface (default the Fermat quintic).
      test: the validation points are the first n_val of ``sample_points(test)`` (a
        SampleConfig on the same manifold, shared with other methods), and the n_points - n_val
        train points a sample of seed; None (default): both are a seeded split of one sample.
      features: what the phi model's network reads: "projective" (default; u = z conj(z) /
        |z|^2, any manifold) or "symmetric" (invariants of the Fermat quintic's symmetry
        group, psi = 0 only; ``networks.invariant``).
      base_k: 0 (default): phi sits on g_FS; k in 2..4 (symmetric features only): on the
        invariant algebraic metric of degree k at the end of the Kahler-Ricci flow
        (``networks.invariant.fit_base``).
    """

    model: str = "metric"
    n_points: int = 100_000
    epochs: int = 50
    width: int = 64
    depth: int = 3
    activation: Optional[str] = None
    parameterization: str = "standard"
    optimizer: str = "adam"
    lr: float = 1e-2
    lr_final_fraction: float = 0.01
    warmup_epochs: int = 0
    batch_size: Optional[int] = None
    val_fraction: float = 0.1
    readout_std: Optional[float] = None
    ntk_probe: int = 0
    ntk_every: int = 0
    ntk_implementation: int = 1
    lbfgs_steps: int = 0
    lbfgs_points: int = 20_000
    lbfgs_every: int = 10
    ricci: bool = True
    seed: int = 0
    manifold: Manifold = field(default_factory=Manifold)
    test: Optional[SampleConfig] = field(default=None, metadata={"key": "omit-default"})
    features: str = field(default="projective", metadata={"key": "omit-default"})
    base_k: int = field(default=0, metadata={"key": "omit-default"})

    constraints: ClassVar[dict] = {
        "model": OneOf(MODELS, label="model"),
        "activation": Maybe(OneOf(ACTIVATIONS, label="activation")),
        "parameterization": OneOf(PARAMETERIZATIONS, label="parameterization"),
        "optimizer": OneOf(OPTIMIZERS, label="optimizer"),
        "n_points": Count("points", minimum=20),
        "epochs": Count("epochs", minimum=0, maximum=10_000),
        "width": Count("width", maximum=100_000),
        "depth": Count("depth", maximum=50),
        "lr": Positive("lr"),
        "lr_final_fraction": Positive("lr_final_fraction"),
        "warmup_epochs": Count("warmup epochs", minimum=0, maximum=10_000),
        "batch_size": Maybe(Count("batch size")),
        "val_fraction": Positive("val_fraction", below=1),
        "readout_std": Maybe(Positive("readout_std")),
        "ntk_probe": Count("NTK probe points", minimum=0, maximum=2000),
        "ntk_every": Count("ntk_every", minimum=0, maximum=10_000),
        "ntk_implementation": Count("ntk_implementation", minimum=1, maximum=3),
        "lbfgs_steps": Count("L-BFGS steps", minimum=0, maximum=100_000),
        "lbfgs_points": Count("L-BFGS points", minimum=1, maximum=10_000_000),
        "lbfgs_every": Count("lbfgs_every", minimum=1, maximum=100_000),
        "ricci": Flag(),
        "seed": SEED,
        "features": OneOf(FEATURES, label="features"),
        "base_k": Count("base_k", minimum=0, maximum=MAX_BASE_K),
    }

    def __post_init__(self):
        set_ = lambda name, value: object.__setattr__(self, name, value)  # noqa: E731
        validate(self)
        if self.activation is None:
            set_("activation", DEFAULT_ACTIVATION[self.model])
        if self.model == "phi" and self.activation == "relu":
            raise MetricflowError("the phi model needs a smooth activation (gelu or erf): d dbar of a ReLU net is 0 almost everywhere")
        if self.lr_final_fraction > 1:
            raise MetricflowError(f"lr_final_fraction must be in (0, 1], got {self.lr_final_fraction}")
        if self.warmup_epochs and self.warmup_epochs >= self.epochs:
            raise MetricflowError(f"warmup_epochs ({self.warmup_epochs}) must be fewer than epochs ({self.epochs})")
        if self.readout_std is None:
            set_("readout_std", READOUT_STD[self.model])
        if self.ntk_implementation == 3:
            raise MetricflowError(f"ntk_implementation must be 1 or 2 (3, neural-tangents' STRUCTURED_DERIVATIVES, is broken for these functions), got {self.ntk_implementation!r}")
        n_val = self.n_val
        if self.batch_size is None:
            set_("batch_size", min(200, self.n_points - n_val))
        if n_val < 10 or self.n_points - n_val < 10:
            raise MetricflowError(f"{self.n_points} points with val_fraction {self.val_fraction} leave fewer than 10 train or validation points")
        if self.batch_size > self.n_points - n_val:
            raise MetricflowError(
                f"batch size {self.batch_size:,} exceeds the {self.n_points - n_val:,} train points; use a smaller batch"
            )
        if self.test is not None:
            check_test_sample(self.test, self.manifold, n_val, "the network's validation")
        if self.ntk_probe > n_val:
            raise MetricflowError(f"ntk_probe {self.ntk_probe} exceeds the {n_val} validation points")
        if self.features == "symmetric" and (self.model != "phi" or self.manifold.degree != 5 or self.manifold.psi != 0):
            raise MetricflowError(
                f"the symmetric features are those of the phi model on the Fermat quintic (psi = 0), got the {self.model} "
                f"model on degree {self.manifold.degree}, psi = {self.manifold.psi:g}; use features 'projective'"
            )
        if self.base_k and (self.features != "symmetric" or self.base_k == 1):
            raise MetricflowError(
                f"base_k {self.base_k}: a base potential needs the symmetric features and a degree 2 to {MAX_BASE_K} "
                "(degree 1 is g_FS itself); use base_k 0"
            )

    @property
    def n_val(self) -> int:
        return int(round(self.val_fraction * self.n_points))

    @property
    def ntk_epochs(self) -> tuple:
        """Epochs after which the metric-NTK is recorded: 0, K, 2K, ... and the last."""
        if self.ntk_probe == 0 or self.ntk_every == 0:
            return ()
        out = list(range(0, self.epochs + 1, self.ntk_every))
        if out[-1] != self.epochs:
            out.append(self.epochs)
        return tuple(out)

    def to_dict(self) -> dict:
        """JSON-ready dict of every field (the manifold as degree and [Re psi, Im psi]); the
        options added later (features, base_k) only where they differ from their defaults."""
        out = {f.name: getattr(self, f.name) for f in fields(self) if f.name not in ("manifold", "test")
               and not (f.metadata.get("key") == "omit-default" and getattr(self, f.name) == f.default)}
        out["manifold"] = {"degree": self.manifold.degree, "psi": [self.manifold.psi.real, self.manifold.psi.imag]}
        if self.test is not None:  # on the same manifold
            out["test"] = {"n_points": self.test.n_points, "seed": self.test.seed}
        return out

    @classmethod
    def from_dict(cls, data: dict) -> "TrainConfig":
        """The inverse of ``to_dict`` (validated; unknown keys are an error)."""
        if not isinstance(data, dict):
            raise MetricflowError(f"a TrainConfig is a JSON object, got {type(data).__name__}")
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise MetricflowError(f"unknown TrainConfig fields {', '.join(unknown)}; expected some of {', '.join(sorted(names))}")
        kwargs = dict(data)
        if "manifold" in kwargs:
            m = kwargs["manifold"]
            try:
                kwargs["manifold"] = Manifold(int(m["degree"]), complex(float(m["psi"][0]), float(m["psi"][1])))
            except (TypeError, KeyError, IndexError, ValueError):
                raise MetricflowError(f"manifold must be {{'degree': d, 'psi': [re, im]}}, got {m!r}") from None
        if kwargs.get("test") is not None:
            t = kwargs["test"]
            try:
                kwargs["test"] = SampleConfig(kwargs.get("manifold", Manifold()), t["n_points"], t["seed"])
            except (TypeError, KeyError):
                raise MetricflowError(f"test must be {{'n_points': n, 'seed': s}}, got {t!r}") from None
        return cls(**kwargs)



# The name job keys and stored results know it by (see the module docstring).
TrainConfig.__module__ = "metricflow.networks.models"
