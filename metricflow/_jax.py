"""The one place where JAX is configured.

The geometry needs double precision (complex128), and JAX defaults to float32. Every module
of metricflow that uses JAX imports ``jax`` and ``jnp`` from here, so x64 is on before any
array is made. Users who import metricflow get x64 for their own JAX code too.
"""

import os
import socket
from pathlib import Path

import jax
import jax.numpy as jnp

jax.config.update("jax_enable_x64", True)

__all__ = ["jax", "jnp", "use_compile_cache"]

# Set to "0" to keep workers from storing and reusing compiled programs.
COMPILE_CACHE_ENV = "METRICFLOW_COMPILE_CACHE"
# A compilation shorter than this (seconds) is not kept (0: every one; a worker compiles many small ones).
COMPILE_CACHE_MIN_SECONDS = 0.0


def use_compile_cache(store: str | os.PathLike) -> Path | None:
    """Keep the programs XLA compiles in this process in ``store``/compiled/<host>-jax<version>,
    and reuse those compiled there before by any process: a fresh worker then starts its
    first epoch about a second sooner (benchmarks/README.md). The first call in a process
    decides; it returns the folder, or None where it is off (``$METRICFLOW_COMPILE_CACHE=0``,
    or JAX's own ``$JAX_COMPILATION_CACHE_DIR`` chosen). The folder is named by host, because
    a program is compiled for its host's CPU; entries are keyed by JAX on the program, the
    JAX version and the backend, and an unreadable one is compiled again.
    """
    if os.environ.get(COMPILE_CACHE_ENV, "1") == "0" or jax.config.jax_compilation_cache_dir:
        return None
    folder = Path(store) / "compiled" / f"{socket.gethostname()}-jax{jax.__version__}"
    jax.config.update("jax_compilation_cache_dir", str(folder))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", COMPILE_CACHE_MIN_SECONDS)
    return folder
