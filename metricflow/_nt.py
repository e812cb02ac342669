"""The only module that imports neural_tangents (section 3.2.1).

neural_tangents pulls in TensorFlow on import (2 to 8 s, about 530 MiB more per process,
1.9 GB on disk), so it is imported inside the functions, never at module level, and only
for infinite-width kernels: the ReLU NTK of the kernel flow (``relu_ntk``, its Monte-Carlo
check) and the analytic ``kernel_fn`` of a finite network's description. Finite networks
are trained, evaluated, saved and their metric-NTK computed without it
(``metricflow.networks.mlp``, ``metricflow.networks.metric_ntk``); ``mlp`` and
``empirical_ntk`` here are stax's own versions, which the tests compare those with.
"""

from __future__ import annotations

import functools

import numpy as np

from metricflow._jax import jax, jnp

__all__ = ["relu_network", "relu_ntk", "relu_ntk_monte_carlo", "mlp", "empirical_ntk"]

# Rows per tile of the NTK Gram matrix; nt.batch computes it in TILE x TILE blocks.
TILE = 500


def relu_network(depth: int, sigma_w: float, sigma_b: float, width: int = 512):
    """One description of a ReLU network: (init_fn, apply_fn, kernel_fn) from stax.

    depth hidden Dense(width) + ReLU layers, then a Dense(1) readout, all with
    W_std = sigma_w and b_std = sigma_b in NTK parameterisation. kernel_fn is the analytic
    infinite-width kernel of the same network; apply_fn is the finite network of ``width``.
    """
    from neural_tangents import stax

    layers = []
    for _ in range(depth):
        layers += [stax.Dense(width, W_std=sigma_w, b_std=sigma_b), stax.Relu()]
    layers.append(stax.Dense(1, W_std=sigma_w, b_std=sigma_b))
    return stax.serial(*layers)


def _tile(n1: int, n2: int) -> int:
    """Largest batch size <= TILE that divides both sizes (nt.batch needs divisors)."""
    g = int(np.gcd(n1, n2))
    for b in range(min(TILE, g), 0, -1):
        if g % b == 0:
            return b
    return 1


def relu_ntk(x1: np.ndarray, x2: np.ndarray, depth: int, sigma_w: float, sigma_b: float) -> np.ndarray:
    """Infinite-width NTK Theta(x, x') of the ReLU network, tiled with nt.batch.

    Args:
      x1: (M, D) float64 inputs (Points.features); x2: (N, D) float64.
      depth, sigma_w, sigma_b: the architecture (table 1: depth 1, 5.716, 80.52).

    Returns:
      (M, N) float64.
    """
    import neural_tangents as nt

    _, _, kernel_fn = relu_network(depth, sigma_w, sigma_b)
    batch = _tile(len(x1), len(x2))
    fn = nt.batch(kernel_fn, batch_size=batch, store_on_device=False) if batch < max(len(x1), len(x2)) else kernel_fn
    out = fn(jnp.asarray(x1, jnp.float64), jnp.asarray(x2, jnp.float64), "ntk")
    return np.asarray(out, dtype=np.float64)


def relu_ntk_monte_carlo(
    x1: np.ndarray, x2: np.ndarray, depth: int, sigma_w: float, sigma_b: float,
    width: int, n_samples: int, seed: int,
) -> np.ndarray:
    """Empirical NTK of the same ReLU network at finite width, averaged over n_samples draws.

    Converges to ``relu_ntk`` as width -> infinity (and n_samples grows).

    Returns:
      (M, N) float64.
    """
    import neural_tangents as nt

    init_fn, apply_fn, _ = relu_network(depth, sigma_w, sigma_b, width)
    mc = nt.monte_carlo_kernel_fn(
        init_fn, apply_fn, jax.random.PRNGKey(seed), n_samples, trace_axes=(-1,),
        implementation=nt.NtkImplementation.JACOBIAN_CONTRACTION,
    )
    out = mc(jnp.asarray(x1, jnp.float64), jnp.asarray(x2, jnp.float64), "ntk")
    return np.asarray(out, dtype=np.float64)


# ---- finite metric networks (section 3.3) ----------------------------------------------

# stax activations by name; relu for the metric model, gelu (smooth) for the phi model
# (the same names as metricflow.networks.mlp.ACTIVATIONS).
ACTIVATIONS = ("relu", "gelu", "erf")


def mlp(depth: int, width: int, out_dim: int, activation: str, parameterization: str,
        readout_std: float, w_std: float = 2.0**0.5, b_std: float = 0.05):
    """The stax description of a finite metric network: (init_fn, apply_fn, kernel_fn).

    ``depth`` hidden Dense(width) + activation layers, then a Dense(out_dim) readout with
    W_std = readout_std and no bias. parameterization is "standard" (training, section 3.3)
    or "ntk" (the width sweep: Theta has a finite limit as width -> infinity). The networks
    that are trained are ``metricflow.networks.mlp.mlp``, the same network in plain JAX;
    this one gives their analytic kernel_fn and is the reference the tests compare with.
    """
    from neural_tangents import stax

    act = {"relu": stax.Relu, "gelu": stax.Gelu, "erf": stax.Erf}[activation]
    layers = []
    for _ in range(depth):
        layers += [stax.Dense(width, W_std=w_std, b_std=b_std, parameterization=parameterization), act()]
    layers.append(stax.Dense(out_dim, W_std=readout_std, b_std=None, parameterization=parameterization))
    return stax.serial(*layers)


def empirical_ntk(f, params, x1, x2, implementation: int = 1):
    """Empirical NTK of f(params, x) -> (N, K) with every output axis kept (eq. 2.7).

    neural-tangents' version of ``metricflow.networks.metric_ntk.metric_ntk`` (which does not
    import it), kept as the reference the tests compare with. Uses
    neural_tangents.empirical_ntk_fn with trace_axes=() and JACOBIAN_CONTRACTION (1) or
    NTK_VECTOR_PRODUCTS (2); STRUCTURED_DERIVATIVES (3) is refused: it gives wrong kernels
    for these functions on the installed versions.

    Returns:
      (N1, N2, K, K) float64: Theta[x, x', k, l] = sum_I df_k(x)/dtheta_I df_l(x')/dtheta_I.
    """
    if int(implementation) not in (1, 2):
        raise ValueError(f"implementation must be 1 or 2 (3 is broken here), got {implementation}")
    return np.asarray(_empirical_ntk_fn(f, int(implementation))(x1, x2, params), dtype=np.float64)


@functools.lru_cache(maxsize=16)
def _empirical_ntk_fn(f, implementation: int):
    """The jitted kernel function, compiled once per (f, implementation)."""
    import neural_tangents as nt

    return jax.jit(nt.empirical_ntk_fn(f, trace_axes=(), vmap_axes=0, implementation=implementation))
