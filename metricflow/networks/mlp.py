"""The finite metric networks as plain JAX functions, with neural-tangents stax's semantics.

``mlp`` gives the same (init_fn, apply_fn, kernel_fn) triple as ``metricflow._nt.mlp``, the
stax description ``serial(Dense(width), act, ..., Dense(out_dim))``, without importing
neural-tangents: the same parameter pytree, the same initial values from the same jax key,
the same outputs. So training, evaluation, saved models and the metric-NTK of a finite
network never load TensorFlow. Only ``kernel_fn``, the analytic infinite-width kernel, is
stax's own: it imports neural-tangents (and TensorFlow) when it is first called.

Parameters (``init_fn(key, (-1, in_dim))[1]``): a list with one entry per stax layer,

* a Dense layer: ``(W, b)``, W (in, out) float64, b (1, out) float64 or None (the readout);
* an activation: ``()``.

Layer equations (stax ``Dense``; N = the layer's input width):

* "standard": W ~ N(0, W_std^2 / N), b ~ N(0, b_std^2); z = x W + b.
* "ntk": W, b ~ N(0, 1); z = (W_std / sqrt(N)) x W + b_std b.

Keys are split as stax.serial and Dense split them: per layer ``key, layer_key =
split(key)`` (activations too), and in a Dense layer ``k_w, k_b = split(layer_key)``.

Example:
  >>> init_fn, apply_fn, _ = mlp(3, 64, 9, "relu", "standard", 0.1)
  >>> _, params = init_fn(jax.random.PRNGKey(0), (-1, 10))
  >>> apply_fn(params, x)                   # x (N, 10) float64 -> (N, 9) float64
"""

from __future__ import annotations

import functools
from typing import Callable, NamedTuple

from metricflow._jax import jax, jnp

__all__ = ["ACTIVATIONS", "PARAMETERIZATIONS", "Network", "mlp", "activation_fn"]

ACTIVATIONS = ("relu", "gelu", "erf")
PARAMETERIZATIONS = ("standard", "ntk")


class Network(NamedTuple):
    """A network as stax describes one.

    init_fn(key, input_shape) -> (output_shape, params); apply_fn(params, x) -> outputs;
    kernel_fn(x1, x2=None, get=None, **kwargs): the infinite-width kernels (neural-tangents).
    """

    init_fn: Callable
    apply_fn: Callable
    kernel_fn: Callable


def activation_fn(name: str) -> Callable:
    """The elementwise activation of stax's Relu, Gelu or Erf, as a jnp function.

    relu: max(x, 0), whose derivative at 0 is 1/2 as in stax's ABRelu(0, 1) (jax.nn.relu has
    0 there); gelu: exact (erf) GELU; erf: erf(x).
    """
    if name == "relu":
        return lambda x: jnp.maximum(x, 0.0)
    if name == "gelu":
        return lambda x: jax.nn.gelu(x, approximate=False)
    if name == "erf":
        return jax.scipy.special.erf
    raise ValueError(f"activation must be one of {', '.join(ACTIVATIONS)}, got {name!r}")


def _dense_init(key, in_dim: int, out_dim: int, w_std: float, b_std, parameterization: str):
    """(W, b) of one Dense layer, drawn as stax draws them."""
    k_w, k_b = jax.random.split(key)
    w = jax.random.normal(k_w, (in_dim, out_dim))
    b = None if b_std is None else jax.random.normal(k_b, (1, out_dim))
    if parameterization == "standard":
        w = w * (w_std / in_dim**0.5)
        b = None if b is None else b * b_std
    return w, b


def _dense_apply(params, x, w_std: float, b_std, parameterization: str):
    """z of one Dense layer; the contraction is stax's (tensordot, then move the axis)."""
    w, b = params
    prod = jnp.moveaxis(jnp.tensordot(w, x, (0, x.ndim - 1)), 0, -1)
    if parameterization == "ntk":
        out = (w_std / x.shape[-1] ** 0.5) * prod
        if b is not None:
            out = out + b_std * b
        return out
    return prod if b is None else prod + b


def mlp(depth: int, width: int, out_dim: int, activation: str, parameterization: str,
        readout_std: float, w_std: float = 2.0**0.5, b_std: float = 0.05) -> Network:
    """A finite metric network: ``depth`` hidden Dense(width) + activation layers, then a
    Dense(out_dim) readout with W_std = readout_std and no bias (as ``metricflow._nt.mlp``).

    Args:
      depth, width: hidden layers and their width.
      out_dim: outputs per point.
      activation: "relu", "gelu" or "erf".
      parameterization: "standard" (training, section 3.3) or "ntk" (the width sweep).
      readout_std: W_std of the readout; w_std, b_std: of the hidden layers.

    Returns:
      Network(init_fn, apply_fn, kernel_fn): init_fn(key, (-1, in_dim)) -> ((-1, out_dim),
      params); apply_fn(params, x) with x (N, in_dim) float64 -> (N, out_dim) float64;
      kernel_fn is stax's analytic kernel of the same network (imports neural-tangents).
    """
    if parameterization not in PARAMETERIZATIONS:
        raise ValueError(f"parameterization must be one of {', '.join(PARAMETERIZATIONS)}, got {parameterization!r}")
    act = activation_fn(activation)
    dense = [(width, w_std, b_std)] * depth + [(out_dim, readout_std, None)]

    def init_fn(key, input_shape):
        shape = tuple(input_shape)
        params = []
        for i, (out, ws, bs) in enumerate(dense):
            key, layer_key = jax.random.split(key)
            params.append(_dense_init(layer_key, shape[-1], out, ws, bs, parameterization))
            shape = shape[:-1] + (out,)
            if i < depth:
                key, _ = jax.random.split(key)  # the activation layer's key, unused
                params.append(())
        return shape, params

    def apply_fn(params, x, **kwargs):
        for i, (_, ws, bs) in enumerate(dense):
            x = _dense_apply(params[2 * i], x, ws, bs, parameterization)
            if i < depth:
                x = act(x)
        return x

    def kernel_fn(x1, x2=None, get=None, **kwargs):
        return _stax_kernel_fn(depth, width, out_dim, activation, parameterization, readout_std, w_std, b_std)(
            x1, x2, get, **kwargs)

    return Network(init_fn, apply_fn, kernel_fn)


@functools.lru_cache(maxsize=16)
def _stax_kernel_fn(*architecture):
    """stax's kernel_fn of the same description (neural-tangents, imported here, lazily)."""
    from metricflow import _nt

    return _nt.mlp(*architecture)[2]
