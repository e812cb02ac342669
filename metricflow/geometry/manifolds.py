"""The Dwork family of Calabi–Yau hypersurfaces sum z_i^d - d*psi*prod z_i = 0 in P^(d-1).

d = 5 is the quintic threefold (psi = 0: the Fermat quintic of eq. 3.1), d = 4 the quartic
K3 surface and d = 3 the cubic torus. All three are Calabi–Yau (degree = ambient dim + 1),
so |Omega|^2 / det g is a global function and the same code serves all of them.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass

import numpy as np
from scipy.special import gamma

from metricflow.errors import ConfigTypeError, MetricflowError
from metricflow.parse import complex_number

__all__ = ["Manifold", "MANIFOLDS", "manifold", "family_psis"]

MANIFOLDS = {"cubic": 3, "quartic": 4, "quintic": 5}

# psi closer than this to a d-th root of unity (psi^d = 1: the conifold, with a node) is
# refused. Any root written with 5 or more decimals (0.30902+0.95106j) lies within
# sqrt(2) * 5e-6 = 7.1e-6 of it, so is refused as the singular point it stands for; at
# distance 1e-5 the sampler is still sound (docs/RELIABILITY.md: weights as at 1e-4).
SINGULAR_DISTANCE = 1e-5


@dataclass(frozen=True)
class Manifold:
    """A member of the Dwork family.

    Attributes:
      degree: d, the degree of the polynomial; the ambient space is P^(d-1).
      psi: the complex structure parameter; psi^d = 1 is singular.
    """

    degree: int = 5
    psi: complex = 0j

    def __post_init__(self):
        # Checked here, not by metricflow.constraints: the degree keeps its type (a JSON key
        # holds it as given), and psi's check is its distance to the singular locus.
        if self.degree not in MANIFOLDS.values():
            wrong_type = isinstance(self.degree, bool) or not isinstance(self.degree, numbers.Real)
            raise (ConfigTypeError if wrong_type else MetricflowError)(
                f"degree must be one of 3, 4, 5, got {self.degree!r}"
            )
        try:
            psi = complex_number(self.psi) if isinstance(self.psi, str) else complex(self.psi)  # '10+3i' as the CLI reads it
        except (TypeError, ValueError):
            raise ConfigTypeError(f"psi must be a complex number, got {self.psi!r}") from None
        if not (math.isfinite(psi.real) and math.isfinite(psi.imag)):
            raise MetricflowError(f"psi must be finite, got {self.psi!r}")
        d = self.degree
        roots = np.exp(2j * np.pi * np.arange(d) / d)
        nearest = roots[np.argmin(np.abs(psi - roots))]
        distance = abs(psi - nearest)
        if distance < SINGULAR_DISTANCE:
            raise MetricflowError(
                f"psi={psi:g} is on the singular locus psi^{d} = 1: it is {distance:.2g} from the root "
                f"{complex(nearest):.6g}, and psi must be at least {SINGULAR_DISTANCE:g} from every root of psi^{d} = 1; "
                "choose another psi (for example 0, the Fermat point)"
            )
        object.__setattr__(self, "psi", psi)

    @property
    def name(self) -> str:
        return {v: k for k, v in MANIFOLDS.items()}[self.degree]

    @property
    def ambient_dim(self) -> int:
        """Number of homogeneous coordinates, d."""
        return self.degree

    @property
    def dim(self) -> int:
        """Complex dimension n = d - 2 of the hypersurface."""
        return self.degree - 2

    def polynomial(self, z: np.ndarray) -> np.ndarray:
        """p(z) for z of shape (..., d), complex128; returns shape (...)."""
        d = self.degree
        return np.sum(z**d, axis=-1) - d * self.psi * np.prod(z, axis=-1)

    def gradient(self, z: np.ndarray) -> np.ndarray:
        """dp/dz_j for z of shape (..., d); returns shape (..., d), complex128."""
        d = self.degree
        # prod_{k != j} z_k without dividing by z_j (which may be zero)
        others = np.stack([np.prod(np.delete(z, j, axis=-1), axis=-1) for j in range(d)], axis=-1)
        return d * z ** (d - 1) - d * self.psi * others

    def monomial_scale(self, z: np.ndarray) -> np.ndarray:
        """sum |z_i|^d + d|psi| prod|z_i|: the size of the terms that cancel in p(z) = 0."""
        d = self.degree
        a = np.abs(z)
        return np.sum(a**d, axis=-1) + d * abs(self.psi) * np.prod(a, axis=-1)

    def exact_kappa(self) -> float | None:
        """kappa = Vol_FS / int |Omega|^2 in closed form for the Fermat point, else None.

        With g_FS = (1/pi) d dbar log|z|^2, Vol_FS = int det g_FS d^(2n)x = d / n!, and
        int |Omega|^2 d^(2n)x = pi^n gamma(1/d)^d / d^(d-1) with gamma(a) = Gamma(a)/Gamma(1-a),
        from the complex Dirichlet integral after t_i = z_i^d. This gives
        kappa = d^d / (n! pi^n gamma(1/d)^d): 0.01762 (quintic), 0.1693 (quartic), 1.110 (cubic).
        """
        if self.psi != 0:
            return None
        d, n = self.degree, self.dim
        g = gamma(1 / d) / gamma(1 - 1 / d)
        return d**d / (math.factorial(n) * math.pi**n * g**d)


def manifold(name: str = "quintic", psi: complex = 0) -> Manifold:
    """The Dwork-family member called ``name`` ("quintic", "quartic" or "cubic")."""
    if name not in MANIFOLDS:
        raise MetricflowError(
            f"unknown manifold {name!r}; choose one of {', '.join(MANIFOLDS)}"
        )
    return Manifold(degree=MANIFOLDS[name], psi=psi)


def family_psis(psis, degree: int = 5) -> tuple:
    """``psis`` as a tuple of distinct complex numbers, each a smooth member of the degree-d
    Dwork family (``Manifold`` checks the singular locus).

    Raises:
      ConfigTypeError: if a value is not a complex number.
      MetricflowError: if there is none, one repeats, or one is singular (one line each).
    """
    try:
        out = tuple(complex(p) for p in psis)
    except (TypeError, ValueError):
        raise ConfigTypeError(f"psis must be complex numbers such as (0, 0.5, 10+3j), got {psis!r}") from None
    if not out:
        raise MetricflowError("give at least one psi")
    if len(set(out)) != len(out):
        raise MetricflowError(f"psis must not repeat, got {', '.join(f'{p:g}' for p in out)}")
    for p in out:
        Manifold(degree, p)
    return out
