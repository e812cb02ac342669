"""Workers keep the programs XLA compiles in their store (metricflow._jax.use_compile_cache):
a later process reuses them, with the same numbers, and the switch turns it off (that a pool
worker keeps them: tests/test_workers.py)."""

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

TRAIN = """
import hashlib, json, sys
from jax._src import monitoring
from metricflow._jax import use_compile_cache
counts = {"hits": 0, "misses": 0}
def listen(event, **kwargs):
    for name in counts:
        if event == "/jax/compilation_cache/cache_" + name:
            counts[name] += 1
monitoring.register_event_listener(listen)
folder = use_compile_cache(sys.argv[1])
from metricflow.networks.models import TrainConfig, train
r = train(TrainConfig(model="metric", n_points=300, epochs=1, batch_size=100, seed=3))
digest = hashlib.sha256(r.val_sigma.tobytes() + r.train_loss.tobytes()).hexdigest()
print(json.dumps({"folder": str(folder) if folder else None, "digest": digest, **counts}))
"""


def _train(store: Path, **env) -> dict:
    out = subprocess.run([sys.executable, "-c", TRAIN, str(store)], capture_output=True, text=True, cwd=ROOT,
                         env={**os.environ, "PYTHONPATH": str(ROOT), **env}, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_a_later_process_reuses_the_compiled_programs_with_the_same_numbers(tmp_path):
    first = _train(tmp_path)
    folder = Path(first["folder"])
    assert folder.parent == tmp_path / "compiled" and folder.name.endswith(f"-jax{__import__('jax').__version__}")
    kept = sorted(p.name for p in folder.iterdir())
    assert first["hits"] == 0 and first["misses"] > 0 and len(kept) == first["misses"]
    second = _train(tmp_path)
    assert second["hits"] == first["misses"] and second["misses"] == 0
    assert second["digest"] == first["digest"]  # bit for bit
    assert sorted(p.name for p in folder.iterdir()) == kept
    off = _train(tmp_path / "off", METRICFLOW_COMPILE_CACHE="0")
    assert off["folder"] is None and off["hits"] == off["misses"] == 0 and not (tmp_path / "off").exists()
    assert off["digest"] == first["digest"]
