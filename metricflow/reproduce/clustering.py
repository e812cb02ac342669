"""Section 3.1 of the report: clustering by FS distance (fig. 2, eq. 3.3) and the silhouettes."""

from __future__ import annotations

from metricflow.figures import cluster_heatmap_figure, silhouette_figure
from metricflow.reproduce.section import PaperNumber, Rows, Section, fmt
from metricflow.studies.clustering import ClusterConfig

__all__ = ["CLUSTERING_SECTION", "FIG2"]

KEY = "clustering"
FIG2 = "fig2"  # the one piece: batched, full and Birch clustering of the same points

# The sizes of each mode; "full" is fig. 2's (docs/REPRODUCTION.md).
SIZES = {
    "full": dict(n_points=1000, n_clusters=10, n_batches=5),
    "quick": dict(n_points=1000, n_clusters=10, n_batches=5),
    "tiny": dict(n_points=60, n_clusters=3, n_batches=2, heatmap_points=60, silhouette_points=60),
}

METHODS = ("batched", "full", "birch")

_WHY_SILHOUETTE = ("All scores are within a few hundredths of 0: the points fill a real 6-manifold almost uniformly, "
                   "so no clustering separates them. With sklearn's average linkage the full clustering beats the "
                   "batched one (the paper found the reverse); the paper's seed and batch order are not given "
                   "(docs/CLUSTERING.md). Seed-to-seed scatter is about ±.02.")

NUMBERS = (
    PaperNumber("silhouette-batched", KEY, "silhouette, batched clustering (3.3), 5 batches", ".016", 0.016,
                ("abs", 0.02), _WHY_SILHOUETTE),
    PaperNumber("silhouette-full", KEY, "silhouette, full clustering", "-.011", -0.011, ("abs", 0.02),
                _WHY_SILHOUETTE),
    PaperNumber("silhouette-birch", KEY, "silhouette, Birch on Euclidean features", "-.032", -0.032,
                ("abs", 0.02), _WHY_SILHOUETTE),
)


def configs(config) -> list:
    """[(piece name, ClusterConfig)] of ``config`` (a ReproduceConfig)."""
    return [(FIG2, ClusterConfig(methods=METHODS, seed=config.seed, **SIZES[config.size]))]


def measure(results: dict, rows: Rows) -> None:
    """The three silhouettes of fig. 2's piece."""
    r = results.get(FIG2)
    if r is None:
        for m in METHODS:
            rows.missing(f"silhouette-{m}", FIG2)
        return
    c = r.config
    settings = f"{c.n_points:,} points, {c.n_clusters} clusters, {c.n_batches} batches, seed {c.seed}"
    for m in METHODS:
        value = r.silhouette.get(m)
        rows.add(f"silhouette-{m}", value, fmt(value, 2) if value is None else f"{value:+.3f}", settings)


def figures(results: dict) -> list:
    """Fig. 2's ordered distance matrices and the silhouette bars."""
    if FIG2 not in results:
        return []
    return [cluster_heatmap_figure(results[FIG2], max_side=250), silhouette_figure(results[FIG2])]


CLUSTERING_SECTION = Section(
    key=KEY,
    title="3.1 Clustering by FS distance (fig. 2, eq. 3.3)",
    paper="Distance matrices of 1000 points unordered, ordered by batched (3.3) and by full "
          "clustering into 10 clusters (5 batches); silhouette scores .016, -.011 and -.032 (Birch).",
    numbers=NUMBERS,
    configs=configs,
    measure=measure,
    figures=figures,
)
