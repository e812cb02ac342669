"""The device line every benchmark prints at its start (README.md, "On a GPU").

  from device import print_device   # benchmarks/ is the script's folder, so it is on sys.path
  print_device()

prints one line such as ``device: TFRT_CPU_0 (platform cpu, 1 device, JAX_PLATFORMS unset)``.
The benchmarks' worker processes inherit the environment (JAX_PLATFORMS, CUDA_VISIBLE_DEVICES),
so they run on the platform named here.
"""

from __future__ import annotations

import os

__all__ = ["device_line", "print_device"]


def device_line() -> str:
    """One line: JAX's first device, its platform, how many there are and JAX_PLATFORMS."""
    import jax

    devices = jax.devices()
    first = devices[0]
    count = f"{len(devices)} device{'s' if len(devices) != 1 else ''}"
    return f"device: {first} (platform {first.platform}, {count}, JAX_PLATFORMS {os.environ.get('JAX_PLATFORMS') or 'unset'})"


def print_device() -> None:
    print(device_line(), flush=True)
