"""The one place where JAX is configured.

The geometry needs double precision (complex128), and JAX defaults to float32. Every module
of metricflow that uses JAX imports ``jax`` and ``jnp`` from here, so x64 is on before any
array is made. Users who import metricflow get x64 for their own JAX code too.
"""

import jax
import jax.numpy as jnp

jax.config.update("jax_enable_x64", True)

__all__ = ["jax", "jnp"]
