"""The theory lab's numbers: the cos-net NTK converges in width and narrows to a delta function."""

import numpy as np
import pytest

from metricflow.errors import MetricflowError
from metricflow.jobs import estimate, job_kind
from metricflow.kernels import cosnet_kernel, cosnet_width
from metricflow.studies.theory import THEORY_SCHEMA, TheoryConfig, run_theory


@pytest.fixture(scope="module")
def result():
    return run_theory(TheoryConfig(widths=(10, 100, 1000, 10000), trials=3, locality_sigma_w=(1.0, 10.0, 100.0)))


def test_empirical_kernel_error_falls_like_one_over_sqrt_width(result):
    assert np.all(np.diff(result.error) < 0)
    assert -0.65 < result.slope < -0.35
    assert result.error[-1] < 0.03


def test_analytic_curve_is_the_kernel_code_on_the_line(result):
    c = result.config
    origin = np.zeros((1, c.d))
    assert result.t[len(result.t) // 2] == 0.0
    assert result.analytic[len(result.t) // 2] == pytest.approx(cosnet_kernel(origin, origin, c.sigma_w)[0, 0], rel=1e-12)
    assert result.t[-1] == pytest.approx(3 * cosnet_width(c.sigma_w, c.d))
    # the kernel is isotropic: the same curve along another unit vector
    u = np.eye(c.d)[0]
    np.testing.assert_allclose(result.analytic, cosnet_kernel(result.t[:, None] * u, origin, c.sigma_w)[:, 0])


def test_locality_widths_follow_eq_2_37_with_unit_mass(result):
    np.testing.assert_allclose(result.width_measured, result.width_eq237, rtol=1e-3)
    np.testing.assert_allclose(result.width_eq237, np.sqrt(10) / result.sigma_w)
    np.testing.assert_allclose(result.mass, 1.0, rtol=1e-4)
    assert np.all(np.diff(result.peak) > 0)  # narrower and taller: towards a delta function


def test_config_is_validated_and_registered():
    assert TheoryConfig(widths=(100, 10, 10)).widths == (10, 100)
    with pytest.raises(MetricflowError, match="at least 2 distinct widths"):
        TheoryConfig(widths=(10,))
    with pytest.raises(MetricflowError, match="sigma_w must be a positive"):
        TheoryConfig(sigma_w=-1)
    with pytest.raises(MetricflowError, match="locality sigma_w"):
        TheoryConfig(locality_sigma_w=(0.0,))
    assert job_kind(TheoryConfig()).schema_version == THEORY_SCHEMA
    cost = estimate(TheoryConfig())
    assert 2 < cost.seconds < 60 and cost.bytes < 2**30
