"""Job kinds of the flow and theory lab: registration and estimates."""

import pytest

from metricflow.errors import MetricflowError
from metricflow.flows.flow import estimate_flow, flow_from_options
from metricflow.flows.flow import SCHEMA_VERSION, FlowConfig, run_flow
from metricflow.jobs import check_estimate, job_kind


def test_flow_is_registered():
    kind = job_kind(FlowConfig())
    assert kind.function is run_flow and kind.schema_version == SCHEMA_VERSION and kind.estimate is estimate_flow


def test_flow_estimate_grows_with_the_dense_kernel():
    small = estimate_flow(FlowConfig(kernel="gaussian", n_train=1000, n_test=1000))
    big = estimate_flow(FlowConfig(kernel="gaussian", n_train=4000, n_test=4000))
    assert big.bytes - small.bytes >= 16 * (4000 * 8000 - 1000 * 2000)
    assert big.seconds > small.seconds > 2
    sparse = estimate_flow(flow_from_options(kernel="gaussian", n_train=4000, n_test=4000, radius=0.3))
    delta = estimate_flow(FlowConfig(kernel="delta", n_train=4000, n_test=4000))
    assert delta.bytes < sparse.bytes < big.bytes
    finite = estimate_flow(flow_from_options(kernel="cosnet", n_train=1000, n_test=1000, width=10_000))
    assert finite.bytes >= 16 * 10_000 * 2000
    relu = estimate_flow(FlowConfig(kernel="relu-ntk", n_train=1000, n_test=1000))
    assert relu.bytes > small.bytes and relu.seconds > small.seconds + 4


def test_flow_estimate_refuses_a_dense_kernel_over_the_limit():
    with pytest.raises(MetricflowError, match=r"dense 20,000 x 40,000 .* use fewer points, a cutoff radius"):
        check_estimate(FlowConfig(kernel="gaussian", n_train=20_000))
    check_estimate(FlowConfig(kernel="delta", n_train=20_000))  # sparse: fine
