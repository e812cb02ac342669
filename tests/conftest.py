import pytest

from metricflow import SampleConfig, manifold, sample_points


@pytest.fixture(scope="session")
def quintic_100k():
    """10^5 points on the Fermat quintic, seed 0 (about 1 s)."""
    return sample_points(SampleConfig(manifold("quintic"), 100_000, seed=0))
