"""Feature clustering by FS distance (section 3.1, eq. 3.3), the graph method, cluster-wise flows, CLI."""

import json
import subprocess
import sys

import numpy as np
import pytest

from metricflow import FSNeighbours, MetricflowError, SampleConfig, fs_distance_matrix, sample_points
from metricflow.cli.main import main
from metricflow.studies.clustering import (
    METHODS,
    PAPER_SILHOUETTE,
    BlockDiagonal,
    ClusterConfig,
    ClusterFlowConfig,
    batched_clustering,
    cluster_mean_distances,
    graph_clustering,
    knn_graph,
    knn_indices,
    merge_rule,
    run_cluster_flow,
    run_clustering,
)
from metricflow.flows.flow import FlowConfig


def groups(n_per: int, centres: int, spread: float, seed: int = 0):
    """Points of P^4 scattered tightly around ``centres`` random points; returns (z, group)."""
    rng = np.random.default_rng(seed)
    c = rng.standard_normal((centres, 5)) + 1j * rng.standard_normal((centres, 5))
    group = np.repeat(np.arange(centres), n_per)
    noise = spread * (rng.standard_normal((len(group), 5)) + 1j * rng.standard_normal((len(group), 5)))
    z = c[group] / np.linalg.norm(c[group], axis=1, keepdims=True) + noise
    order = rng.permutation(len(group))
    return z[order], group[order]


@pytest.fixture(scope="module")
def paper_case():
    """Fig. 2's setting: 1000 quintic points, 10 clusters, 5 batches, every method."""
    return run_clustering(ClusterConfig(n_points=1000, n_clusters=10, n_batches=5, seed=0))


# ---- the merge step (steps 3-5, eq. 3.3) ----------------------------------------------------


def test_merge_rule_known_answers():
    mean = np.array([
        [0.10, 0.90, 0.20],
        [0.80, 0.30, 0.15],
        [0.70, 0.85, 0.90],
    ])  # first-batch clusters (rows) by later-batch clusters (columns)
    # nearest: each later cluster joins the row with the smallest mean distance
    assert merge_rule(mean, "nearest").tolist() == [0, 1, 1]
    # greedy: row 0 takes column 0, row 1 the nearest free column 2, row 2 the last one
    assert merge_rule(mean, "greedy").tolist() == [0, 2, 1]
    with pytest.raises(MetricflowError, match="unknown merge rule"):
        merge_rule(mean, "closest")


def test_cluster_mean_distances_match_brute_force():
    z, _ = groups(30, 3, 0.05)
    rng = np.random.default_rng(1)
    la, lb = rng.integers(0, 3, 50), rng.integers(0, 4, 40)
    got = cluster_mean_distances(z[:50], la, z[50:], lb, 3, 4)
    d = fs_distance_matrix(z[:50], z[50:])
    want = np.array([[d[np.ix_(la == a, lb == b)].mean() for b in range(4)] for a in range(3)])
    np.testing.assert_allclose(got, want, rtol=1e-12)


def test_batched_clustering_merges_a_constructed_case():
    # four tight groups far apart: every batch finds them, and the merge must map each
    # later batch's cluster of group g onto the first batch's cluster of group g
    z, group = groups(60, 4, 0.02, seed=3)
    for rule in ("nearest", "greedy"):
        labels = batched_clustering(z, n_clusters=4, n_batches=3, seed=5, rule=rule)
        assert labels.shape == (240,)
        for g in range(4):
            assert len(np.unique(labels[group == g])) == 1
        assert len(np.unique(labels)) == 4


# ---- the paper's case ------------------------------------------------------------------------


def test_every_point_gets_exactly_one_cluster(paper_case):
    r = paper_case
    assert r.methods == METHODS
    for m in r.results:
        assert m.labels.shape == (1000,) and m.labels.dtype == np.int64
        assert m.labels.min() >= 0 and m.labels.max() < 10
        assert m.sizes.sum() == 1000
        assert -1 <= m.silhouette <= 1
    assert all(r.get(m).sizes.min() > 0 for m in ("batched", "full", "graph"))
    summary = r.summary()
    json.dumps(summary)
    assert summary["paper_silhouette"] == PAPER_SILHOUETTE


def test_fs_methods_beat_euclidean_birch(paper_case):
    s = paper_case.silhouette
    assert s["full"] > s["birch"] + 0.02
    assert s["graph"] > s["birch"] + 0.02
    # the batched method's margin over Birch is thin at 200-point batches: average 4 seeds
    batched, birch = [], []
    for seed in range(4):
        r = run_clustering(ClusterConfig(n_points=1000, n_clusters=10, n_batches=5, seed=seed, methods=("batched", "birch")))
        batched.append(r.silhouette["batched"])
        birch.append(r.silhouette["birch"])
    assert np.mean(batched) > np.mean(birch)


def test_heatmap_data_is_the_distance_matrix_in_cluster_order(paper_case):
    r = paper_case
    assert r.heatmap_distance.shape == (1000, 1000)
    z = sample_points(SampleConfig(n_points=1000, seed=0)).z[r.heatmap_index]
    np.testing.assert_allclose(r.heatmap_distance, fs_distance_matrix(z), atol=1e-6)
    for m in ("batched", "full"):
        order = r.heatmap_order(m)
        assert sorted(order.tolist()) == list(range(1000))
        assert np.all(np.diff(r.get(m).labels[r.heatmap_index][order]) >= 0)
        np.testing.assert_array_equal(r.ordered_heatmap(m), r.heatmap_distance[np.ix_(order, order)])


# ---- the graph method -----------------------------------------------------------------------


def test_knn_is_exact_against_fsneighbours():
    z = sample_points(SampleConfig(n_points=3000, seed=4)).z
    ours = knn_indices(z, 12)
    _, theirs = FSNeighbours(z).query(z, 12, exclude_self=True)
    assert np.array_equal(np.sort(ours, axis=1), np.sort(theirs, axis=1))
    graph = knn_graph(z, 12)
    assert (graph != graph.T).nnz == 0 and graph.diagonal().sum() == 0
    assert np.all(np.diff(graph.indptr) >= 12)


def test_graph_clustering_recovers_separated_groups():
    z, group = groups(50, 5, 0.03, seed=7)
    for linkage in ("ward", "average"):
        labels = graph_clustering(z, 5, k=8, linkage=linkage)
        assert len(np.unique(labels)) == 5
        for g in range(5):
            assert len(np.unique(labels[group == g])) == 1


# ---- configs --------------------------------------------------------------------------------


@pytest.mark.parametrize("kwargs, message", [
    (dict(n_clusters=1), "clusters must be at least 2"),
    (dict(n_points=100, n_clusters=30, n_batches=5), "fewer than the 30 clusters"),
    (dict(methods=("kmeans",)), "unknown clustering method 'kmeans'"),
    (dict(n_points=100_000, methods=("full",)), "over the limit"),
    (dict(merge="closest"), "unknown merge rule"),
    (dict(birch_threshold=-1), "birch_threshold must be a positive number"),
])
def test_config_refuses_bad_input(kwargs, message):
    with pytest.raises(MetricflowError, match=message) as err:
        ClusterConfig(**kwargs)
    assert "\n" not in str(err.value)


def test_config_resolves_methods_that_fit():
    assert ClusterConfig(n_points=1000).methods == METHODS
    assert ClusterConfig(n_points=100_000, n_batches=10).methods == ("batched", "birch", "graph")
    assert ClusterConfig(n_points=100_000, n_batches=2).methods == ("birch", "graph")
    assert ClusterConfig(methods=("graph", "full", "graph")).methods == ("full", "graph")


# ---- cluster-wise flows ------------------------------------------------------------------------


def test_block_diagonal_kernel_is_zero_between_clusters():
    rng = np.random.default_rng(0)
    rows, cols = (np.array([0, 2]), np.array([1, 3])), (np.array([1, 2]), np.array([0]))
    blocks = (rng.random((2, 2)), rng.random((2, 1)))
    k = BlockDiagonal(rows, cols, blocks, (4, 3))
    dense = np.zeros((4, 3))
    dense[np.ix_(rows[0], cols[0])] = blocks[0]
    dense[np.ix_(rows[1], cols[1])] = blocks[1]
    x = rng.random((3, 5))
    np.testing.assert_allclose(k @ x, dense @ x)


def test_cluster_flow_costs_test_sigma_and_one_cluster_is_the_plain_flow():
    flow = FlowConfig(kernel="gaussian", n_train=300, n_test=300, steps=5, lr=0.05, normalise=True)
    one = run_cluster_flow(ClusterFlowConfig(flow=flow, method="full", n_clusters=1))
    np.testing.assert_allclose(one.clustered.test_sigma, one.unclustered.test_sigma, rtol=1e-10)
    assert one.test_sigma_ratio == pytest.approx(1.0)
    three = run_cluster_flow(ClusterFlowConfig(flow=flow, method="batched", n_clusters=3, n_batches=2))
    assert three.train_sizes.sum() == 300 and three.test_sizes.sum() == 300
    assert three.kernel_entries < 300 * 600
    assert np.isfinite(three.test_sigma_ratio)
    summary = three.summary()
    json.dumps(summary)
    assert summary["test_sigma_clustered"] == three.clustered.test_sigma[three.clustered.steps_done]
    assert 0 < summary["test_sigma_se_clustered"] < summary["test_sigma_clustered"]
    assert summary["test_sigma_self_unclustered"] is not None


# ---- command line ---------------------------------------------------------------------------


def test_cli_json_keys(capsys, tmp_path):
    out = tmp_path / "fig2.html"
    code = main(["cluster", "--points", "400", "--clusters", "5", "--batches", "2", "--method", "batched",
                 "--method", "birch", "--json", "--heatmap", str(out)])
    assert code == 0
    r = json.loads(capsys.readouterr().out)
    assert set(r["silhouette"]) == {"batched", "birch"}
    assert isinstance(r["seconds"], float) and r["paper_silhouette"]["batched"] == 0.016
    assert out.read_text().count("heatmap") > 0


def test_cli_bad_input_exits_2_without_traceback():
    p = subprocess.run([sys.executable, "-m", "metricflow", "cluster", "--points", "50", "--clusters", "20",
                        "--batches", "5"], capture_output=True, text=True)
    assert p.returncode == 2
    assert "Traceback" not in p.stderr and "fewer than the 20 clusters" in p.stderr
    assert len(p.stderr.strip().splitlines()) == 1
