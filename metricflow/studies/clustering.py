"""Feature clustering by Fubini–Study distance (section 3.1, fig. 2, eq. 3.3) and cluster-wise flows.

A dense kernel over N train points is an N x N matrix (75 GiB at N = 10^5), so the paper
clusters the points by their FS geodesic distance (eq. 3.2) and runs the kernel flow (3.5)
within each cluster, neglecting the contributions of other clusters. The clusterings here:

  batched  the paper's algorithm (steps 1-5): split the points into B mini-batches of about
           M = N / B points, cluster each with average-linkage agglomeration on its M x M FS
           distance matrix, then merge across batches (eq. 3.3): every cluster of batch I > 1
           joins the cluster of the first batch at the smallest mean FS distance
           (``merge="nearest"``). ``merge="greedy"`` is the other reading of step 4: the
           first batch's clusters, in order, each take the nearest cluster of batch I not
           yet taken (a one-to-one matching, so the order of clusters matters).
  full     the same agglomeration on all N points at once (N x N matrix; small N only).
  birch    sklearn Birch on the Euclidean features (real and imaginary parts of z in its
           patch, ``Points.features``): the paper's baseline.
  graph    scalable: the exact k-nearest-neighbour graph in FS distance (``FSNeighbours``)
           as the connectivity of a Ward (or average) agglomeration of the projector
           embedding, whose Euclidean distance sqrt(2) sin d is monotone in d. Memory O(N k).

Quality is the silhouette score on FS distances (sklearn, ``metric="precomputed"``), on all
points up to ``silhouette_points`` and on a fixed random sample of that many above.

Example:
  >>> result = run_clustering(ClusterConfig(n_points=1000, n_clusters=10, n_batches=5))
  >>> result.silhouette            # {"batched": ..., "full": ..., "birch": ..., "graph": ...}
  >>> result.heatmap_order("batched")   # fig. 2, middle panel
"""

from __future__ import annotations

import math
import time
import warnings
from dataclasses import dataclass, field, fields
from typing import ClassVar, NamedTuple, Optional

import numpy as np
from scipy.sparse import csr_matrix

from metricflow.geometry.distance import FSNeighbours, fs_distance_matrix, projector_embedding
from metricflow.constraints import SEED, Count, Flag, OneOf, Real, validate
from metricflow.errors import MetricflowError, check_count, check_memory
from metricflow.estimates import Estimate
from metricflow.geometry.manifolds import Manifold
from metricflow.progress import Progress

__all__ = [
    "CLUSTER_SCHEMA",
    "CLUSTER_FLOW_SCHEMA",
    "METHODS",
    "MERGE_RULES",
    "PAPER_SILHOUETTE",
    "ClusterConfig",
    "ClusterResult",
    "MethodResult",
    "ClusterFlowConfig",
    "ClusterFlowResult",
    "BlockDiagonal",
    "agglomerate",
    "cluster_mean_distances",
    "merge_rule",
    "batched_clustering",
    "full_clustering",
    "birch_clustering",
    "graph_clustering",
    "cluster_labels",
    "fs_silhouette",
    "run_clustering",
    "estimate_clustering",
    "run_cluster_flow",
    "estimate_cluster_flow",
]

# Bump when a result's fields or their meaning change: cached results are then recomputed.
CLUSTER_SCHEMA = 1
# 2: the flow config holds its kernel's spec (flow schema 3).
CLUSTER_FLOW_SCHEMA = 2

METHODS = ("batched", "full", "birch", "graph")
MERGE_RULES = ("nearest", "greedy")
GRAPH_LINKAGES = ("ward", "average")

# Section 3.1: 1000 quintic points, 10 clusters, 5 batches for the batched algorithm.
PAPER_SILHOUETTE = {"batched": 0.016, "full": -0.011, "birch": -0.032}

# The full clustering and each mini-batch hold an M x M float64 distance matrix, and sklearn's
# average linkage a condensed copy with its index arrays: about 24 M^2 bytes (2.4 GB at 10^4).
MAX_AGGLOMERATE_POINTS = 15_000
# Rows of the first batch per block when the mean distances between clusters are summed.
MEAN_ROWS = 2048



def _stream(seed: int, stream: int) -> np.random.Generator:
    """An independent generator for (seed, stream); no global RNG."""
    return np.random.default_rng(np.random.SeedSequence([seed, stream]))


def _choice(value, name: str, allowed: tuple) -> str:
    if value not in allowed:
        raise MetricflowError(f"unknown {name} {value!r}; expected one of {', '.join(allowed)}")
    return value


def _batch_sizes(n: int, b: int) -> tuple[int, int]:
    """Smallest and largest mini-batch when n points are split into b nearly equal batches."""
    return n // b, -(-n // b)


# ---- configs ---------------------------------------------------------------------------


@dataclass(frozen=True)
class ClusterConfig:
    """What to cluster and how (section 3.1). Validated on construction; computes nothing.

    Attributes:
      n_points: N points sampled on the manifold (all charts; seed ``seed``).
      n_clusters: C clusters for every method (the paper: 10 for 1000 points).
      n_batches: B mini-batches of the batched algorithm (the paper: 5 for fig. 2). Every
        batch must hold at least C points.
      methods: the clusterings to run, from METHODS; () means all that fit: "full" only up
        to MAX_AGGLOMERATE_POINTS points, "batched" only with batches up to that size.
      merge: "nearest" (each later cluster joins the nearest first-batch cluster) or
        "greedy" (one-to-one matching in cluster order); see the module docstring.
      neighbours: k of the k-nearest-neighbour graph of the "graph" method.
      graph_linkage: "ward" (on the projector embedding) or "average".
      birch_threshold: sklearn Birch's subcluster radius on the features.
      silhouette_points: silhouette on all points up to this many, else on a fixed sample.
      heatmap_points: points in the fig. 2 heatmaps (a fixed random sample above this).
      seed: seeds the points, the batch split and both samples.
      manifold: the hypersurface (default the Fermat quintic).
    """

    n_points: int = 1000
    n_clusters: int = 10
    n_batches: int = 5
    methods: tuple = ()
    merge: str = "nearest"
    neighbours: int = 6
    graph_linkage: str = "ward"
    birch_threshold: float = 0.5
    silhouette_points: int = 5000
    heatmap_points: int = 1000
    seed: int = 0
    manifold: Manifold = field(default_factory=Manifold)

    constraints: ClassVar[dict] = {
        "n_points": Count("points", minimum=3),
        "n_clusters": Count("clusters", minimum=2),
        "n_batches": Count("batches"),
        "neighbours": Count("neighbours", maximum=100),
        "silhouette_points": Count("silhouette points", minimum=3, maximum=20_000),
        "heatmap_points": Count("heatmap points", minimum=2, maximum=5_000),
        "seed": SEED,
        "merge": OneOf(MERGE_RULES, label="merge rule"),
        "graph_linkage": OneOf(GRAPH_LINKAGES, label="graph linkage"),
        "birch_threshold": Real("birch_threshold"),
    }

    def __post_init__(self):
        set_ = lambda name, value: object.__setattr__(self, name, value)  # noqa: E731
        validate(self)
        n = self.n_points
        validate(self, {  # bounds set by the number of points and of clusters
            "n_clusters": Count("clusters", minimum=2, maximum=n - 1),
            "n_batches": Count("batches", maximum=n),
            "neighbours": Count("neighbours", maximum=min(100, n - 1)),
            "silhouette_points": Count("silhouette points", minimum=self.n_clusters + 1, maximum=20_000),
        })
        if not self.birch_threshold > 0:
            raise MetricflowError(f"birch_threshold must be a positive number, got {self.birch_threshold!r}")
        methods = (self.methods,) if isinstance(self.methods, str) else tuple(self.methods or ())
        for m in methods:
            _choice(m, "clustering method", METHODS)
        smallest, largest = _batch_sizes(n, self.n_batches)
        if smallest < self.n_clusters and (not methods or "batched" in methods):
            raise MetricflowError(
                f"{self.n_batches} batches of {n:,} points hold as few as {smallest:,} points each, fewer than "
                f"the {self.n_clusters} clusters; use fewer batches or clusters"
            )
        fits = {"batched": largest <= MAX_AGGLOMERATE_POINTS, "full": n <= MAX_AGGLOMERATE_POINTS, "birch": True, "graph": True}
        if not methods:
            methods = tuple(m for m in METHODS if fits[m])
        for m in methods:
            if not fits[m]:
                size = largest if m == "batched" else n
                raise MetricflowError(
                    f"the {m} clustering needs a {size:,} x {size:,} distance matrix, over the limit of "
                    f"{MAX_AGGLOMERATE_POINTS:,} points; use more batches or the graph method"
                )
        set_("methods", tuple(m for m in METHODS if m in methods))  # canonical order, no repeats

    @property
    def batch_size(self) -> int:
        """M: the largest mini-batch of the batched algorithm."""
        return _batch_sizes(self.n_points, self.n_batches)[1]

    def to_dict(self) -> dict:
        out = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "manifold"}
        out["methods"] = list(self.methods)
        out["manifold"] = {"degree": self.manifold.degree, "psi": [self.manifold.psi.real, self.manifold.psi.imag]}
        return out


# ---- the clusterings ---------------------------------------------------------------------


def agglomerate(dist: np.ndarray, n_clusters: int) -> np.ndarray:
    """Average-linkage agglomerative clustering of a precomputed distance matrix (step 2).

    Args:
      dist: (M, M) symmetric FS distances (``fs_distance_matrix``).
      n_clusters: C <= M.

    Returns:
      (M,) int labels in 0..C-1.
    """
    from sklearn.cluster import AgglomerativeClustering

    model = AgglomerativeClustering(n_clusters=n_clusters, metric="precomputed", linkage="average")
    return model.fit_predict(dist).astype(np.int64)


def cluster_mean_distances(z_a: np.ndarray, labels_a: np.ndarray, z_b: np.ndarray, labels_b: np.ndarray,
                           n_a: int, n_b: int) -> np.ndarray:
    """Mean FS distance (eq. 3.2) between every cluster of set a and every cluster of set b.

    mean[alpha, beta] = mean over x in c^a_alpha, y in c^b_beta of d_FS(x, y), the quantity
    minimised in eq. (3.3). Summed in blocks of MEAN_ROWS rows of a: no |a| x |b| matrix.

    Args:
      z_a, z_b: (P, d) and (Q, d) complex points; labels_a (P,) in 0..n_a-1, labels_b (Q,)
        in 0..n_b-1.

    Returns:
      (n_a, n_b) float64; NaN where a cluster is empty.
    """
    one_b = np.zeros((len(z_b), n_b))
    one_b[np.arange(len(z_b)), labels_b] = 1.0
    sums = np.zeros((n_a, n_b))
    for s in range(0, len(z_a), MEAN_ROWS):
        per_b = fs_distance_matrix(z_a[s : s + MEAN_ROWS], z_b) @ one_b  # (rows, n_b)
        np.add.at(sums, labels_a[s : s + MEAN_ROWS], per_b)
    counts = np.outer(np.bincount(labels_a, minlength=n_a), np.bincount(labels_b, minlength=n_b))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)


def merge_rule(mean: np.ndarray, rule: str = "nearest") -> np.ndarray:
    """Which first-batch cluster each cluster of a later batch joins (steps 3-5, eq. 3.3).

    Args:
      mean: (C1, C) mean FS distances, first-batch clusters by later-batch clusters
        (``cluster_mean_distances``).
      rule: "nearest": cluster beta joins argmin_alpha mean[alpha, beta]. "greedy": for
        alpha = 0, 1, ... in turn, the nearest beta not yet taken joins alpha (needs C <= C1;
        the clusters left over, if C1 < C is ever allowed, would be unassigned).

    Returns:
      (C,) int: the first-batch cluster of each later-batch cluster.

    Example:
      >>> merge_rule(np.array([[0.1, 0.5], [0.2, 0.3]]))            # both nearest to 0
      array([0, 0])
      >>> merge_rule(np.array([[0.1, 0.5], [0.2, 0.3]]), "greedy")  # one-to-one
      array([0, 1])
    """
    _choice(rule, "merge rule", MERGE_RULES)
    mean = np.where(np.isnan(mean), np.inf, np.asarray(mean, dtype=float))
    c1, c = mean.shape
    if rule == "nearest":
        return np.argmin(mean, axis=0).astype(np.int64)
    if c > c1:
        raise MetricflowError(f"greedy merging needs at most {c1} clusters per later batch, got {c}")
    out = np.full(c, -1, dtype=np.int64)
    for alpha in range(c1):
        free = np.flatnonzero(out < 0)
        if len(free) == 0:
            break
        beta = free[np.argmin(mean[alpha, free])]
        out[beta] = alpha
    return out


def batched_clustering(z: np.ndarray, n_clusters: int, n_batches: int, seed: int, rule: str = "nearest",
                       progress: Optional[Progress] = None) -> np.ndarray:
    """The paper's batched clustering (section 3.1, steps 1-5, eq. 3.3).

    1. Split the points, in a random order from ``seed``, into B nearly equal mini-batches.
    2. Cluster each batch with average-linkage agglomeration on its FS distance matrix.
    3-5. Keep the first batch's clusters; merge every later batch's clusters into them by
       mean FS distance (``merge_rule``).

    Args:
      z: (N, d) complex points. n_clusters: C. n_batches: B, with N / B >= C. seed: the
        order of the points. rule: see ``merge_rule``.

    Returns:
      (N,) int labels in 0..C-1, the first batch's cluster numbers.
    """
    report = progress or (lambda *a: None)
    n = len(z)
    check_memory(24.0 * _batch_sizes(n, n_batches)[1] ** 2, f"clustering batches of {_batch_sizes(n, n_batches)[1]:,} points")
    batches = np.array_split(_stream(seed, 1).permutation(n), n_batches)
    labels = np.empty(n, dtype=np.int64)
    first = batches[0]
    first_labels = agglomerate(fs_distance_matrix(z[first]), n_clusters)
    labels[first] = first_labels
    report(1, n_batches, f"batch 1 of {n_batches} clustered")
    for i, batch in enumerate(batches[1:], start=2):
        own = agglomerate(fs_distance_matrix(z[batch]), n_clusters)
        mean = cluster_mean_distances(z[first], first_labels, z[batch], own, n_clusters, n_clusters)
        labels[batch] = merge_rule(mean, rule)[own]
        report(i, n_batches, f"batch {i} of {n_batches} clustered and merged")
    return labels


def full_clustering(z: np.ndarray, n_clusters: int, dist: Optional[np.ndarray] = None) -> np.ndarray:
    """Average-linkage agglomeration of all N points at once (fig. 2, right); ``dist`` if known."""
    n = len(z)
    if n > MAX_AGGLOMERATE_POINTS:
        raise MetricflowError(
            f"the full clustering of {n:,} points needs a {n:,} x {n:,} distance matrix, over the limit of "
            f"{MAX_AGGLOMERATE_POINTS:,}; use the batched or graph method"
        )
    check_memory(24.0 * n * n, f"the full clustering of {n:,} points")
    return agglomerate(fs_distance_matrix(z) if dist is None else dist, n_clusters)


def birch_clustering(features: np.ndarray, n_clusters: int, threshold: float = 0.5) -> np.ndarray:
    """sklearn Birch on Euclidean features (the paper's baseline), as (N,) int labels."""
    from sklearn.cluster import Birch

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "fewer subclusters than n_clusters" is reported by the sizes
        return Birch(n_clusters=n_clusters, threshold=threshold).fit_predict(features).astype(np.int64)


def knn_indices(z: np.ndarray, k: int) -> np.ndarray:
    """Exact k nearest neighbours in FS distance of every point among the others, (N, k) int."""
    k = check_count(k, "neighbours", maximum=len(z) - 1)
    return FSNeighbours(z).query(z, k, exclude_self=True)[1]


def knn_graph(z: np.ndarray, k: int) -> csr_matrix:
    """Symmetric (N, N) 0/1 connectivity of the exact k-nearest-neighbour FS graph."""
    n = len(z)
    idx = knn_indices(z, k)
    graph = csr_matrix((np.ones(idx.size), (np.repeat(np.arange(n), k), idx.ravel())), shape=(n, n))
    graph = graph.maximum(graph.T).tocsr()
    graph.data[:] = 1.0
    return graph


def graph_clustering(z: np.ndarray, n_clusters: int, k: int = 6, linkage: str = "ward") -> np.ndarray:
    """Agglomeration of the projector embedding restricted to the exact kNN graph.

    Only clusters joined by a graph edge can merge, so the work is O(N k) pairs and no N x N
    matrix is formed. The embedding's Euclidean distance is sqrt(2) sin d_FS, monotone in the
    FS distance (``projector_embedding``). If the graph is disconnected, sklearn joins its
    components first (with a warning, silenced here).

    Args:
      z: (N, d) complex. n_clusters: C. k: neighbours per point (6-15). linkage: "ward" or
        "average".

    Returns:
      (N,) int labels in 0..C-1.
    """
    from sklearn.cluster import AgglomerativeClustering

    _choice(linkage, "graph linkage", GRAPH_LINKAGES)
    check_memory(len(z) * (400.0 + 64.0 * k), f"the graph clustering of {len(z):,} points")
    graph = knn_graph(z, k)
    model = AgglomerativeClustering(n_clusters=n_clusters, connectivity=graph, linkage=linkage)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return model.fit_predict(projector_embedding(z)).astype(np.int64)


def cluster_labels(method: str, z: np.ndarray, n_clusters: int, *, n_batches: int = 1, seed: int = 0,
                   merge: str = "nearest", neighbours: int = 6, graph_linkage: str = "ward",
                   features: Optional[np.ndarray] = None, birch_threshold: float = 0.5,
                   dist: Optional[np.ndarray] = None, progress: Optional[Progress] = None) -> np.ndarray:
    """(N,) int labels of the points z by one of METHODS (birch needs ``features``)."""
    _choice(method, "clustering method", METHODS)
    if method == "batched":
        return batched_clustering(z, n_clusters, n_batches, seed, merge, progress)
    if method == "full":
        return full_clustering(z, n_clusters, dist)
    if method == "birch":
        if features is None:
            raise MetricflowError("the birch clustering needs the Euclidean features (Points.features)")
        return birch_clustering(features, n_clusters, birch_threshold)
    return graph_clustering(z, n_clusters, neighbours, graph_linkage)


def fs_silhouette(dist: np.ndarray, labels: np.ndarray) -> float:
    """sklearn's silhouette score on precomputed FS distances; NaN with one cluster only."""
    from sklearn.metrics import silhouette_score

    k = len(np.unique(labels))
    if not 2 <= k <= len(labels) - 1:
        return float("nan")
    return float(silhouette_score(dist, labels, metric="precomputed"))


# ---- the clustering job --------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class MethodResult:
    """One clustering of the points.

    Attributes:
      method: one of METHODS.
      labels: (N,) int64 cluster of each point, in 0..C-1.
      silhouette: silhouette score on FS distances (NaN if only one cluster is non-empty).
      seconds: time of the clustering (without the silhouette).
    """

    method: str
    labels: np.ndarray
    silhouette: float
    seconds: float

    @property
    def sizes(self) -> np.ndarray:
        """(C,) int: points per cluster."""
        return np.bincount(self.labels)


@dataclass(frozen=True, eq=False)
class ClusterResult:
    """The clusterings of one ClusterConfig, with the data of fig. 2. H heatmap points.

    Attributes:
      config: the ClusterConfig.
      results: one MethodResult per method run, in METHODS order.
      silhouette_index: (S,) int, the points the silhouettes were computed on (all if N <=
        config.silhouette_points), shared by every method.
      heatmap_index: (H,) int, the points of the heatmaps (all, or a fixed random sample).
      heatmap_distance: (H, H) float32 FS distances between them, in that order (fig. 2 left).
      sample_seconds: time to sample the points; seconds: time for everything.
      schema_version: CLUSTER_SCHEMA.
    """

    config: ClusterConfig
    results: tuple
    silhouette_index: np.ndarray
    heatmap_index: np.ndarray
    heatmap_distance: np.ndarray
    sample_seconds: float
    seconds: float
    schema_version: int = CLUSTER_SCHEMA

    @property
    def methods(self) -> tuple:
        return tuple(r.method for r in self.results)

    def get(self, method: str) -> MethodResult:
        """The MethodResult of ``method``; MetricflowError if it was not run."""
        for r in self.results:
            if r.method == method:
                return r
        raise MetricflowError(f"the {method} clustering was not run; ran {', '.join(self.methods)}")

    @property
    def silhouette(self) -> dict:
        """{method: silhouette score} of the methods run."""
        return {r.method: r.silhouette for r in self.results}

    def heatmap_order(self, method: str) -> np.ndarray:
        """(H,) permutation of the heatmap points grouping them by ``method``'s clusters."""
        return np.argsort(self.get(method).labels[self.heatmap_index], kind="stable")

    def ordered_heatmap(self, method: Optional[str] = None) -> np.ndarray:
        """(H, H) heatmap distances, unordered (None) or ordered by ``method``'s clusters."""
        if method is None:
            return self.heatmap_distance
        order = self.heatmap_order(method)
        return self.heatmap_distance[np.ix_(order, order)]

    def summary(self) -> dict:
        """The scalars as a JSON-ready dict (``metricflow cluster --json``)."""
        clean = lambda v: None if not math.isfinite(v) else float(v)  # noqa: E731
        return {
            "config": self.config.to_dict(),
            "silhouette": {r.method: clean(r.silhouette) for r in self.results},
            "paper_silhouette": {m: PAPER_SILHOUETTE[m] for m in self.methods if m in PAPER_SILHOUETTE},
            "silhouette_points": int(len(self.silhouette_index)),
            "cluster_sizes": {r.method: r.sizes.tolist() for r in self.results},
            "method_seconds": {r.method: r.seconds for r in self.results},
            "batch_size": self.config.batch_size,
            "heatmap_points": int(len(self.heatmap_index)),
            "sample_seconds": self.sample_seconds,
            "seconds": self.seconds,
        }

    def labels_csv(self) -> str:
        """One row per point: index, then the cluster of each method."""
        rows = ["point," + ",".join(self.methods)]
        columns = np.stack([r.labels for r in self.results], axis=1)
        rows += [f"{i}," + ",".join(map(str, row)) for i, row in enumerate(columns.tolist())]
        return "\n".join(rows) + "\n"


def _sample(n: int, size: int, seed: int, stream: int) -> np.ndarray:
    return np.arange(n) if n <= size else np.sort(_stream(seed, stream).choice(n, size=size, replace=False))


def run_clustering(config: ClusterConfig, progress: Optional[Progress] = None) -> ClusterResult:
    """Sample the points of ``config``, run its clusterings and score them (section 3.1).

    Args:
      config: a ClusterConfig.
      progress: optional callback progress(step, total, message).

    Returns:
      ClusterResult.
    """
    from metricflow.geometry.points import SampleConfig, sample_points

    c = config
    report = progress or (lambda *a: None)
    total = len(c.methods) + 2
    start = time.perf_counter()
    report(0, total, f"sampling {c.n_points:,} points")
    pts = sample_points(SampleConfig(c.manifold, c.n_points, c.seed))
    sample_seconds = time.perf_counter() - start
    sil_index = _sample(c.n_points, c.silhouette_points, c.seed, 2)
    sil_dist = fs_distance_matrix(pts.z[sil_index])
    every = sil_dist if len(sil_index) == c.n_points else None  # the full clustering reuses it
    results = []
    for step, method in enumerate(c.methods, start=1):
        report(step, total, f"{method} clustering")
        t0 = time.perf_counter()
        sub = None
        if method == "batched":
            sub = lambda i, b, msg: report(step, total, msg)  # noqa: E731
        labels = cluster_labels(
            method, pts.z, c.n_clusters, n_batches=c.n_batches, seed=c.seed, merge=c.merge,
            neighbours=c.neighbours, graph_linkage=c.graph_linkage, features=pts.features,
            birch_threshold=c.birch_threshold, dist=every, progress=sub,
        )
        seconds = time.perf_counter() - t0
        results.append(MethodResult(method, labels, fs_silhouette(sil_dist, labels[sil_index]), seconds))
    report(total - 1, total, "heatmap distances")
    heat_index = _sample(c.n_points, c.heatmap_points, c.seed, 3)
    heat = fs_distance_matrix(pts.z[heat_index]).astype(np.float32)
    report(total, total, "done")
    return ClusterResult(c, tuple(results), sil_index, heat_index, heat, sample_seconds, time.perf_counter() - start)


def estimate_clustering(config: ClusterConfig) -> Estimate:
    """Expected seconds and peak bytes of ``run_clustering(config)``.

    Memory: the silhouette matrix (8 S^2), the largest agglomeration (about 24 M^2 bytes for
    M points: the matrix, sklearn's condensed copy and its index arrays), the kNN graph and
    ward tree (about 2 kB per point), plus the worker. Times fitted on 2 cores: average
    linkage ~1.5e-7 s per matrix entry, the FS distances ~3e-8 s per entry (batch merging
    B M^2), the kNN search ~4e-9 s per pair N^2, Birch ~2e-5 s per point.
    """
    c = config
    n, m = c.n_points, c.batch_size
    s = min(n, c.silhouette_points)
    memory = 400 * 2**20 + 8.0 * s * s + 4.0 * c.heatmap_points**2 + 2000.0 * n
    seconds = 2.0 + 3e-8 * s * s
    if "batched" in c.methods:
        memory = max(memory, memory + 24.0 * m * m)
        seconds += c.n_batches * 1.5e-7 * m * m + 3e-8 * n * m
    if "full" in c.methods:
        memory = max(memory, 400 * 2**20 + 24.0 * n * n)
        seconds += 1.5e-7 * n * n
    if "birch" in c.methods:
        seconds += 2e-5 * n
    if "graph" in c.methods:
        memory += 64.0 * c.neighbours * n
        seconds += 4e-9 * n * n + 1e-4 * n
    return Estimate(float(seconds), int(memory))


# ---- cluster-wise kernel flows ----------------------------------------------------------------


class BlockDiagonal(NamedTuple):
    """A kernel that is zero between clusters: K[rows_c, cols_c] = blocks[c], never formed.

    Each block may be dense, sparse or LowRank (anything with ``@`` and ``shape``), so it
    serves ``run_flow`` like any kernel of ``metricflow.kernels``.
    """

    rows: tuple  # per cluster: (m_c,) int, its query points
    cols: tuple  # per cluster: (n_c,) int, its train points
    blocks: tuple
    shape: tuple

    def __matmul__(self, x):
        x = np.asarray(x)
        out = np.zeros((self.shape[0],) + x.shape[1:])
        for r, c, block in zip(self.rows, self.cols, self.blocks):
            if len(r) and len(c):
                out[r] = np.asarray(block @ x[c]).reshape((len(r),) + x.shape[1:])
        return out


@dataclass(frozen=True)
class ClusterFlowConfig:
    """A kernel flow (3.5) run per cluster, other clusters' contributions set to zero.

    Attributes:
      flow: the FlowConfig (kernel, sizes, steps, seed); its points are those of
        ``run_flow(flow)``.
      method: "batched", "full" or "graph" (clustering of the train points).
      n_clusters, n_batches, merge, neighbours, graph_linkage: as in ClusterConfig.
      compare: also run the unclustered flow (only if its dense kernel fits).
    """

    flow: object = None
    method: str = "batched"
    n_clusters: int = 5
    n_batches: int = 1
    merge: str = "nearest"
    neighbours: int = 6
    graph_linkage: str = "ward"
    compare: bool = True

    constraints: ClassVar[dict] = {
        "method": OneOf(("batched", "full", "graph"), label="cluster-flow method"),
        "merge": OneOf(MERGE_RULES, label="merge rule"),
        "graph_linkage": OneOf(GRAPH_LINKAGES, label="graph linkage"),
        "n_clusters": Count("clusters"),
        "n_batches": Count("batches"),
        "neighbours": Count("neighbours", maximum=100),
        "compare": Flag(),
    }

    def __post_init__(self):
        from metricflow.flows.flow import FlowConfig

        if self.flow is None:
            object.__setattr__(self, "flow", FlowConfig())
        if not isinstance(self.flow, FlowConfig):
            raise MetricflowError(f"flow must be a FlowConfig, got {type(self.flow).__name__}")
        validate(self)
        n = self.flow.n_train
        validate(self, {  # bounds set by the flow's train points
            "n_clusters": Count("clusters", minimum=1, maximum=max(1, n - 1)),
            "n_batches": Count("batches", maximum=n),
            "neighbours": Count("neighbours", maximum=min(100, max(1, n - 1))),
        })
        smallest, largest = _batch_sizes(n, self.n_batches)
        if self.method == "batched" and smallest < self.n_clusters:
            raise MetricflowError(
                f"{self.n_batches} batches of {n:,} train points hold as few as {smallest:,} points, fewer than "
                f"the {self.n_clusters} clusters; use fewer batches or clusters"
            )
        size = largest if self.method == "batched" else n
        if self.method != "graph" and size > MAX_AGGLOMERATE_POINTS:
            raise MetricflowError(
                f"the {self.method} clustering needs a {size:,} x {size:,} distance matrix, over the limit of "
                f"{MAX_AGGLOMERATE_POINTS:,} points; use more batches or the graph method"
            )


@dataclass(frozen=True, eq=False)
class ClusterFlowResult:
    """A cluster-wise flow and, where it fits, the unclustered flow on the same points.

    Attributes:
      config: the ClusterFlowConfig.
      clustered: FlowResult of the cluster-wise flow.
      unclustered: FlowResult of ``run_flow(config.flow)``, or None (not asked, or its dense
        kernel is over MAX_DENSE_ENTRIES).
      train_sizes, test_sizes: (C,) int, train and test points per cluster (a test point
        belongs to the cluster of its nearest train point).
      kernel_entries: entries of the clustered kernels, sum_c n_c (n_c + m_c).
      test_sigma_ratio: clustered / unclustered test sigma after the last step (NaN without
        the unclustered flow): how much test sigma the clustering costs (> 1 is worse).
      seconds: time for everything.
      schema_version: CLUSTER_FLOW_SCHEMA.
    """

    config: ClusterFlowConfig
    clustered: object
    unclustered: object
    train_sizes: np.ndarray
    test_sizes: np.ndarray
    kernel_entries: int
    test_sigma_ratio: float
    seconds: float
    schema_version: int = CLUSTER_FLOW_SCHEMA

    def summary(self) -> dict:
        def last(r, name):
            if r is None or getattr(r, name, None) is None:
                return None
            return float(getattr(r, name)[r.steps_done])

        clean = lambda v: None if v is None or not math.isfinite(v) else float(v)  # noqa: E731
        out = {
            "method": self.config.method,
            "clusters": self.config.n_clusters,
            "train_sizes": self.train_sizes.tolist(),
            "test_sizes": self.test_sizes.tolist(),
            "kernel_entries": self.kernel_entries,
        }
        for s in ("test", "train"):
            for name, flow in (("clustered", self.clustered), ("unclustered", self.unclustered)):
                for column in ("sigma", "sigma_se", "sigma_self", "sigma_self_se"):
                    out[f"{s}_{column}_{name}"] = clean(last(flow, f"{s}_{column}"))
        out["test_sigma_ratio"] = clean(self.test_sigma_ratio)
        out["seconds"] = self.seconds
        return out


class _ClusterKernels:
    """``flow_kernels`` per cluster; keeps the labels it found (used once, inside run_flow)."""

    def __init__(self, config: ClusterFlowConfig):
        self.config = config
        self.train_labels = self.test_labels = None

    def __call__(self, flow_config, train, test):
        from metricflow.flows.flow import flow_kernels

        c = self.config
        labels = cluster_labels(c.method, train.z, c.n_clusters, n_batches=c.n_batches, seed=flow_config.seed,
                                merge=c.merge, neighbours=c.neighbours, graph_linkage=c.graph_linkage)
        _, nearest = FSNeighbours(train.z).query(test.z, k=1)
        test_labels = labels[nearest[:, 0]]
        rows, cols, k_train, k_test, isolated = [], [], [], [], 0
        for cluster in range(c.n_clusters):
            tr, te = np.flatnonzero(labels == cluster), np.flatnonzero(test_labels == cluster)
            if len(tr) == 0:
                continue
            a, b, iso = flow_kernels(flow_config, train.subset(tr), test.subset(te))
            rows.append((tr, te))
            cols.append(tr)
            k_train.append(a)
            k_test.append(b)
            isolated += iso
        self.train_labels, self.test_labels = labels, test_labels
        n, m = len(train), len(test)
        return (
            BlockDiagonal(tuple(r[0] for r in rows), tuple(cols), tuple(k_train), (n, n)),
            BlockDiagonal(tuple(r[1] for r in rows), tuple(cols), tuple(k_test), (m, n)),
            isolated,
        )


def run_cluster_flow(config: ClusterFlowConfig, progress: Optional[Progress] = None) -> ClusterFlowResult:
    """Run ``config.flow`` with its kernel restricted to clusters of the train points (section 3.1).

    The train points are clustered by ``config.method``; each test point joins the cluster of
    its nearest train point; the kernel of each cluster is the flow's kernel on its points,
    and the contributions of other clusters are zero. Then, if ``compare`` and the dense
    kernel fits, the unclustered flow runs on the same points (same seeds).

    Returns:
      ClusterFlowResult.
    """
    from metricflow.flows.flow import _dense
    from metricflow.flows.flow import flow_on_points, sample_in_chart
    from metricflow.kernels import MAX_DENSE_ENTRIES

    c, f = config, config.flow
    start = time.perf_counter()
    # the points of run_flow(f): the same seeds and streams
    train, chart, drawn_train = sample_in_chart(f.manifold, f.n_train, f.seed, 0, f.chart, f.coordinates)
    test, _, drawn_test = sample_in_chart(f.manifold, f.n_test, f.seed, 1, chart, f.coordinates)
    drawn = drawn_train + drawn_test
    kernels = _ClusterKernels(c)
    clustered = flow_on_points(f, train, test, chart, drawn, progress, kernels=kernels)
    n, m = f.n_train, f.n_test
    fits = not _dense(f) or n * (n + m) <= MAX_DENSE_ENTRIES
    unclustered = flow_on_points(f, train, test, chart, drawn) if c.compare and fits else None
    train_sizes = np.bincount(kernels.train_labels, minlength=c.n_clusters)
    test_sizes = np.bincount(kernels.test_labels, minlength=c.n_clusters)
    ratio = float("nan")
    if unclustered is not None:
        ratio = float(clustered.test_sigma[clustered.steps_done] / unclustered.test_sigma[unclustered.steps_done])
    return ClusterFlowResult(
        c, clustered, unclustered, train_sizes, test_sizes,
        int(np.sum(train_sizes * (train_sizes + test_sizes))), ratio, time.perf_counter() - start,
    )


def estimate_cluster_flow(config: ClusterFlowConfig) -> Estimate:
    """The flow's estimate with clusters of about N / C points, plus the unclustered flow if compared."""
    from dataclasses import replace

    from metricflow.flows.flow import _dense, estimate_flow
    from metricflow.kernels import MAX_DENSE_ENTRIES

    c = config
    n, m = c.flow.n_train, c.flow.n_test
    # one cluster of the average size (this refuses a dense cluster kernel that is too big);
    # the real clusters vary in size and their kernels check their own sizes
    part = estimate_flow(replace(c.flow, n_train=-(-n // c.n_clusters), n_test=max(1, -(-m // c.n_clusters))))
    size = n if c.method == "full" else _batch_sizes(n, c.n_batches)[1] if c.method == "batched" else 0
    cluster_bytes = 24.0 * size**2 + 2000.0 * n
    kernel_bytes = 16.0 * n * (n + m) / c.n_clusters if _dense(c.flow) else 0.0
    memory = part.bytes + max(cluster_bytes, kernel_bytes)
    seconds = part.seconds * c.n_clusters + c.n_batches * 1.5e-7 * size**2 + 4e-9 * n * (n + m)
    if c.compare and (not _dense(c.flow) or n * (n + m) <= MAX_DENSE_ENTRIES):
        whole = estimate_flow(c.flow)
        seconds += whole.seconds
        memory = max(memory, whole.bytes)
    return Estimate(float(seconds), int(memory))
