"""The function spaces of the classical flows: Kahler potentials phi on top of g_FS.

Both spaces are parametrised by a real vector c through Hermitian matrices,
M(c) = sum_a c_a B_a, with B_a (N_k, N_k) Hermitian and s the degree-k sections of
``metricflow.flows.donaldson``:

  ``basis``      phi = s^dagger M(c) s / |z|^(2k)               (linear in c: a fixed basis)
  ``algebraic``  phi = (1/k) log(s^dagger H(c) s / |z|^(2k)),   H = M(c)   (Donaldson's family)

and the metric is g = g_FS + (1/pi) d dbar phi, in the normalisation of g_FS =
(1/pi) d dbar log|z|^2 (docs/GEOMETRY.md): every g stays in the FS Kahler class. The
algebraic metric is Donaldson's g_k = (1/(k pi)) d dbar log(s^dagger H s).

The matrices B_a span either all Hermitian matrices (``symmetry="full"``, N_k^2 real
parameters) or those invariant under the symmetries of the Dwork quintic family
(``symmetry="invariant"``): permutations of the coordinates, the phases z_i -> w^(a_i) z_i
(w^d = 1; all of them at psi = 0, those with sum a_i = 0 mod d otherwise) and, for real psi,
complex conjugation. The invariant space needs a basis closed under permutations (k < d).

The tangent map of either space, f_a = d phi / d c_a, and its first derivatives in the chart
give the Gram matrices of the flows' metrics (docs/FLOWS.md, "Classical flows"):

  L2(dV_g):  A_ab = <f_a f_b>_{w eta}                          (Calabi)
  H1(dV_g):  A_ab = <Re g^{a bbar} d_a f_a conj(d_b f_b)>_{w eta}  (Kahler-Ricci, two-derivative)

with <.>_{w eta} = sum_x w eta (.) / sum_x w, the Monte-Carlo integral against the metric's
own volume form.
"""

from __future__ import annotations

import functools
import itertools
from typing import NamedTuple

import numpy as np

from metricflow._jax import jnp
from metricflow.errors import MetricflowError
from metricflow.flows.donaldson import initial_h, monomial_exponents, sections
from metricflow.geometry.points import Points

__all__ = [
    "SPACES",
    "SYMMETRIES",
    "SpaceData",
    "hermitian_basis",
    "space_data",
    "start_parameters",
    "potential_values",
    "metric_jax",
    "tangent_features",
    "gram_l2",
    "gram_h1",
    "pseudo_inverse",
    "reproducing_kernel",
    "range_sine",
]

SPACES = ("basis", "algebraic")
SYMMETRIES = ("invariant", "full")


# ---- the parameter matrices B_a ---------------------------------------------------------------


def _allowed(dm: np.ndarray, degree: int, fermat: bool) -> bool:
    """Whether a pair with exponent difference ``dm`` survives the phase symmetries."""
    r = np.mod(dm, degree)
    if fermat:  # all phases: dm = 0 mod d
        return not r.any()
    return bool(np.all(r == r[0]))  # phases with sum a = 0: dm = c (1, ..., 1) mod d


def hermitian_basis(degree: int, k: int, symmetry: str, psi: complex = 0j) -> np.ndarray:
    """The Hermitian matrices B_a that span a space's parameters.

    Args:
      degree: d of the Dwork hypersurface; k: the degree of the sections.
      symmetry: "full" (all Hermitian N_k x N_k matrices) or "invariant" (those fixed by the
        Dwork symmetries at ``psi``; needs k < d).
      psi: the complex structure parameter (only whether it is 0 or real matters).

    Returns:
      (P, N_k, N_k) complex128, each Hermitian; P = N_k^2 for "full".
    """
    exps = monomial_exponents(degree, k)
    n_k = len(exps)
    if symmetry == "full":
        out = []
        for a in range(n_k):
            for b in range(a, n_k):
                m = np.zeros((n_k, n_k), dtype=complex)
                if a == b:
                    m[a, a] = 1.0
                    out.append(m)
                    continue
                m[a, b] = m[b, a] = 1.0
                out.append(m)
                m = np.zeros((n_k, n_k), dtype=complex)
                m[a, b], m[b, a] = 1j, -1j
                out.append(m)
        return np.asarray(out)
    if symmetry != "invariant":
        raise MetricflowError(f"symmetry must be 'invariant' or 'full', got {symmetry!r}")
    if k >= degree:
        raise MetricflowError(
            f"the invariant space needs k < d = {degree} (at k >= d the section basis drops the monomials "
            f"divisible by z_0^{degree} and is not closed under permutations), got k = {k}; use symmetry 'full'"
        )
    psi = complex(psi)
    fermat, real = psi == 0, psi.imag == 0
    index = {tuple(m): i for i, m in enumerate(exps)}
    perms = [np.asarray(p) for p in itertools.permutations(range(degree))]
    seen = np.full((n_k, n_k), -1)
    orbits = []
    for a in range(n_k):
        for b in range(n_k):
            if seen[a, b] >= 0 or not _allowed(exps[a] - exps[b], degree, fermat):
                continue
            members = {(index[tuple(exps[a][p])], index[tuple(exps[b][p])]) for p in perms}
            for i, j in members:
                seen[i, j] = len(orbits)
            orbits.append(members)
    out, done = [], set()
    for o, members in enumerate(orbits):
        if o in done:
            continue
        a, b = next(iter(members))
        t = int(seen[b, a])
        done |= {o, t}
        sym = np.zeros((n_k, n_k), dtype=complex)
        for i, j in members:
            sym[i, j] = sym[j, i] = 1.0
        out.append(sym)
        if t != o and not real:  # an orbit apart from its transpose: a complex entry
            anti = np.zeros((n_k, n_k), dtype=complex)
            for i, j in members:
                anti[i, j], anti[j, i] = 1j, -1j
            out.append(anti)
    return np.asarray(out)


# ---- per-point data ---------------------------------------------------------------------------


class SpaceData(NamedTuple):
    """What the space needs at N points (NumPy arrays, all leading with N).

    s: (N, N_k) complex128, the sections; ds: (N, N_k, n) complex128, d s / d x_a in the chart;
    ell: (N, n) complex128, d_a log |z|^(2k); inv_q: (N,) float64, |z|^(-2k); g_fs: (N, n, n)
    complex128; omega_sq, weights: (N,) float64.
    """

    s: np.ndarray
    ds: np.ndarray
    ell: np.ndarray
    inv_q: np.ndarray
    g_fs: np.ndarray
    omega_sq: np.ndarray
    weights: np.ndarray


def space_data(points: Points, k: int) -> SpaceData:
    """The sections and their chart derivatives at ``points`` (degree ``k``)."""
    exps = monomial_exponents(points.manifold.degree, k)
    s, ds = sections(points.z, exps, derivatives=True)
    dloc = np.einsum("bxi,bai->bxa", ds, points.jacobian)
    norm2 = np.sum(np.abs(points.z) ** 2, axis=1)
    ell = k * np.einsum("bi,bai->ba", np.conj(points.z), points.jacobian) / norm2[:, None]
    return SpaceData(s, dloc, ell, norm2 ** (-k), points.g_fs, points.omega_sq, points.weights)


def start_parameters(space: str, basis: np.ndarray, k: int, degree: int) -> np.ndarray:
    """c at g = g_FS: 0 for "basis"; for "algebraic" the coordinates of H_0 (s^dagger H_0 s =
    |z|^(2k), ``donaldson.initial_h``) in the B_a, shape (P,) float64."""
    if space == "basis":
        return np.zeros(len(basis))
    h0 = initial_h(monomial_exponents(degree, k))
    flat = np.concatenate([basis.reshape(len(basis), -1).real, basis.reshape(len(basis), -1).imag], axis=1)
    target = np.concatenate([h0.reshape(-1).real, h0.reshape(-1).imag])
    c, *_ = np.linalg.lstsq(flat.T, target, rcond=None)
    if np.max(np.abs(flat.T @ c - target)) > 1e-10 * np.max(np.abs(target)):
        raise MetricflowError("g_FS is not in this space: H_0 is not a combination of its matrices")
    return c


# ---- phi and the metric (JAX, differentiable in c) ------------------------------------------


def _matrix(c, basis):
    return jnp.tensordot(c.astype(jnp.complex128), basis, axes=1)


def potential_values(space: str, c: np.ndarray, basis: np.ndarray, data: SpaceData, k: int) -> np.ndarray:
    """phi at the points, (N,) float64 (NumPy): the potential on top of g_FS."""
    m = np.tensordot(c, basis, axes=1)
    p = np.real(np.einsum("nx,xy,ny->n", np.conj(data.s), m, data.s))
    if space == "basis":
        return p * data.inv_q
    if np.any(p <= 0):
        raise MetricflowError("s^dagger H s is not positive at every point: H left the positive cone")
    return np.log(p * data.inv_q) / k


def metric_jax(space: str, c, basis, s, ds, ell, inv_q, g_fs, k: int):
    """g = g_FS + (1/pi) d dbar phi at the points (JAX, differentiable in c).

    Args:
      space: "basis" or "algebraic"; c: (P,) float64; basis: (P, N_k, N_k) complex128.
      s, ds, ell, inv_q, g_fs: the fields of SpaceData; k: the degree.

    Returns:
      (N, n, n) complex128 Hermitian.
    """
    m = _matrix(c, basis)
    md = jnp.einsum("xy,nya->nxa", m, ds)  # M D_a
    p = jnp.real(jnp.einsum("nx,nx->n", jnp.conj(s), jnp.einsum("xy,ny->nx", m, s)))
    dp = jnp.einsum("nx,nxa->na", jnp.conj(s), md)  # d_a P = s^dagger M D_a
    ddp = jnp.einsum("nxa,nxb->nab", md, jnp.conj(ds))  # d_a dbar_b P = D_b^dagger M D_a
    outer = lambda u, v: u[:, :, None] * jnp.conj(v)[:, None, :]  # noqa: E731
    if space == "algebraic":  # (1/(k pi)) d dbar log P
        g = (ddp / p[:, None, None] - outer(dp, dp) / (p**2)[:, None, None]) / (k * jnp.pi)
    else:  # g_FS + (1/pi) d dbar (P e^(-L)), d dbar L = k pi g_FS, d L = ell
        dd = ddp - outer(dp, ell) - outer(ell, dp) - p[:, None, None] * (k * jnp.pi) * g_fs + p[:, None, None] * outer(ell, ell)
        g = g_fs + dd * inv_q[:, None, None] / jnp.pi
    return 0.5 * (g + jnp.conj(jnp.swapaxes(g, 1, 2)))


# ---- the tangent map and the Gram matrices (NumPy) -------------------------------------------


def tangent_features(space: str, c: np.ndarray, basis: np.ndarray, data: SpaceData, k: int):
    """f_a = d phi / d c_a and its chart derivatives d_a f at the points.

    Returns:
      (f, df): (N, P) float64 and (N, n, P) complex128 (the holomorphic derivatives d/dx_a).
    """
    sb = np.einsum("nx,pxy->npy", np.conj(data.s), basis)  # s^dagger B_a: (N, P, N_k)
    pb = np.real(np.einsum("npy,ny->np", sb, data.s))  # s^dagger B s
    dpb = np.einsum("npy,nya->nap", sb, data.ds)  # d_a (s^dagger B s)
    if space == "basis":
        f = pb * data.inv_q[:, None]
        df = (dpb - pb[:, None, :] * data.ell[:, :, None]) * data.inv_q[:, None, None]
        return f, df
    m = np.tensordot(c, basis, axes=1)
    hs = data.s @ m.T
    kh = np.real(np.sum(np.conj(data.s) * hs, axis=1))  # s^dagger H s
    dk = np.einsum("nx,nxa->na", np.conj(data.s), np.einsum("xy,nya->nxa", m, data.ds))
    f = pb / (k * kh[:, None])
    df = dpb / (k * kh[:, None, None]) - pb[:, None, :] * dk[:, :, None] / (k * (kh**2)[:, None, None])
    return f, df


def gram_l2(f: np.ndarray, rho: np.ndarray) -> np.ndarray:
    """A_ab = sum_x rho f_a f_b, (P, P) float64: the L2 metric of the measure rho (N,)."""
    return (f * rho[:, None]).T @ f


def gram_h1(df: np.ndarray, g: np.ndarray, rho: np.ndarray) -> np.ndarray:
    """A_ab = sum_x rho Re(conj(d f_b)^T g^(-1) d f_a), (P, P) float64: the Dirichlet metric.

    Args:
      df: (N, n, P) complex128 holomorphic derivatives; g: (N, n, n) complex128 PD; rho: (N,).
    """
    chol = np.linalg.cholesky(np.linalg.inv(g))  # g^-1 = L L^dagger
    e = np.einsum("nba,nbp->nap", np.conj(chol), df) * np.sqrt(rho)[:, None, None]  # L^dagger d f
    e = e.reshape(-1, df.shape[2])
    return e.real.T @ e.real + e.imag.T @ e.imag


# ---- the kernel K = f A^+ f (eq. 2.8 in phi) -------------------------------------------------

# Eigenvalues of a Gram matrix below this fraction of max(largest, scale) are no direction.
PINV_CUTOFF = 1e-11


def pseudo_inverse(a: np.ndarray, scale: float) -> tuple[np.ndarray, np.ndarray]:
    """The kept eigenpairs of a symmetric PSD Gram matrix, for its pseudo-inverse.

    Eigenvalues at or below PINV_CUTOFF * max(largest, scale) are dropped: a space whose only
    direction is the constant (the invariant space at k = 1) has an H1 Gram matrix of rounding
    size, which is no direction at all, and the constant is the H1 null vector of every space.

    Args:
      a: (P, P) float64 symmetric positive semi-definite.
      scale: a size of A without derivatives (the trace of the L2 Gram matrix), so that a
        rounding-size H1 matrix is not taken at its own scale.

    Returns:
      (lam (R,) float64, v (P, R) float64): A^+ = v diag(1 / lam) v^T.
    """
    lam, v = np.linalg.eigh(a)
    keep = lam > PINV_CUTOFF * max(lam[-1], scale, 1e-300)
    return lam[keep], v[:, keep]


def reproducing_kernel(f: np.ndarray, a: np.ndarray, scale: float) -> np.ndarray:
    """K(x, x') = f(x) A^+ f(x'), the kernel of the projected flow in phi, on M points.

    Args:
      f: (M, P) float64, the tangent functions f_a = d phi / d c_a at the points.
      a: (P, P) float64, the Gram matrix of the flow's metric; scale: as in ``pseudo_inverse``.

    Returns:
      (M, M) float64, symmetric positive semi-definite, rank at most P.
    """
    lam, v = pseudo_inverse(a, scale)
    u = f @ v / np.sqrt(lam)
    return u @ u.T


def range_sine(k0: np.ndarray, k1: np.ndarray, rel: float = 1e-9) -> float:
    """Sine of the largest principal angle between the ranges of two PSD kernels (M, M).

    The ranges are spanned by the eigenvectors with eigenvalue above ``rel`` times the largest.
    0 when the ranges agree (the fixed basis: K moves only through A, i.e. the volume form),
    1 when their ranks differ or one range has a direction orthogonal to the other.
    """
    def basis_of(k):
        lam, v = np.linalg.eigh(0.5 * (k + k.T))
        top = max(float(lam[-1]), 0.0) if lam.size else 0.0
        return v[:, lam > rel * top] if top > 0 else v[:, :0]

    q0, q1 = basis_of(k0), basis_of(k1)
    if q0.shape[1] != q1.shape[1]:
        return 1.0
    if q0.shape[1] == 0:
        return 0.0
    rest = q1 - q0 @ (q0.T @ q1)
    return float(min(1.0, np.linalg.norm(rest, 2)))


def invariant_count(degree: int, k: int) -> int:
    """Number of invariant parameters at the Fermat point (for sizes and estimates)."""
    return len(hermitian_basis(degree, k, "invariant", 0j))


@functools.lru_cache(maxsize=256)
def parameter_count(degree: int, k: int, symmetry: str, psi: complex = 0j) -> int:
    """P, the number of real parameters of a space (kept: the dashboard asks on every run)."""
    if symmetry == "full":
        n_k = len(monomial_exponents(degree, k))
        return n_k * n_k
    return len(hermitian_basis(degree, k, "invariant", psi))

