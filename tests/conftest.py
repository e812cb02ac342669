import os

import pytest

from metricflow import SampleConfig, manifold, sample_points


@pytest.fixture(scope="session", autouse=True)
def no_autostart():
    """The landing page starts no comparison by itself in tests (a test that wants it sets
    METRICFLOW_AUTOSTART=1 for its own server)."""
    old = os.environ.get("METRICFLOW_AUTOSTART")
    os.environ["METRICFLOW_AUTOSTART"] = "0"
    yield
    if old is None:
        os.environ.pop("METRICFLOW_AUTOSTART", None)
    else:
        os.environ["METRICFLOW_AUTOSTART"] = old


@pytest.fixture(scope="session", autouse=True)
def private_cache(tmp_path_factory):
    """Every test, and every CLI or worker process it starts, uses a fresh job store."""
    path = tmp_path_factory.mktemp("cache")
    old = os.environ.get("METRICFLOW_CACHE")
    os.environ["METRICFLOW_CACHE"] = str(path)
    yield path
    if old is None:
        os.environ.pop("METRICFLOW_CACHE", None)
    else:
        os.environ["METRICFLOW_CACHE"] = old


@pytest.fixture
def cache_dir(tmp_path, monkeypatch):
    """A job store of this test's own (AppTest pages and their workers use it)."""
    monkeypatch.setenv("METRICFLOW_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


@pytest.fixture(scope="session")
def quintic_100k():
    """10^5 points on the Fermat quintic, seed 0 (about 1 s)."""
    return sample_points(SampleConfig(manifold("quintic"), 100_000, seed=0))
