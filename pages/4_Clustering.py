"""Clustering: feature clustering by Fubini–Study distance (section 3.1, fig. 2, eq. 3.3)."""

from __future__ import annotations

import json

import streamlit as st

from dashboard import count_input, enter_page, job_section, keep_address, linked, scheduler_sidebar
from metricflow.studies.clustering import METHODS, PAPER_SILHOUETTE, ClusterConfig
from metricflow.errors import MetricflowError
from metricflow.figures import cluster_figures, figures_html
from metricflow.geometry.manifolds import MANIFOLDS, manifold

enter_page()  # a deep link on a fresh server: hands over to app.py's navigation
scheduler_sidebar()  # the sidebar of every page, also when this file runs on its own


ABOUT = (
    "A dense kernel over $N$ train points is an $N\\times N$ matrix, so the paper clusters the points by their "
    "Fubini–Study distance (eq. 3.2) and runs the flow within each cluster. **batched** is the paper's algorithm: "
    "split the points into $B$ mini-batches, cluster each by average linkage, and merge every later batch's "
    "clusters into the first batch's by smallest mean distance (eq. 3.3). **full** clusters all points at once "
    "(small $N$ only), **birch** is the Euclidean baseline on the features, and **graph** agglomerates along the "
    "exact $k$-nearest-neighbour graph (scales to $10^5$ points). The silhouette score is on FS distances."
)


def clustering_controls() -> ClusterConfig:
    """The clustering widgets, as a ClusterConfig (raises MetricflowError on bad input)."""
    c = st.columns(6)
    n_points = count_input(c[0], "Points N", min_value=20, max_value=1_000_000, step=500,
                           key=linked("clustering_points", 1000))
    n_clusters = count_input(c[1], "Clusters C", min_value=2, max_value=1000, key=linked("clustering_clusters", 10))
    n_batches = count_input(c[2], "Batches B", min_value=1, max_value=1000, key=linked("clustering_batches", 5))
    neighbours = count_input(c[3], "kNN k (graph)", min_value=1, max_value=100, key=linked("clustering_k", 10))
    seed = count_input(c[4], "Seed", min_value=0, max_value=2**31 - 1, key=linked("clustering_seed", 0))
    name = c[5].selectbox("Manifold", list(MANIFOLDS), key=linked("clustering_manifold", "quintic", MANIFOLDS))
    left, right = st.columns([3, 1])
    methods = left.multiselect("Methods (none = all that fit)", list(METHODS),
                               key=linked("clustering_methods", [], METHODS))
    merge = right.selectbox("Merge across batches", ["nearest", "greedy"],
                            key=linked("clustering_merge", "nearest", ["nearest", "greedy"]),
                            help="nearest: each later cluster joins the nearest first-batch cluster; "
                                 "greedy: one-to-one matching in cluster order")
    return ClusterConfig(n_points=int(n_points), n_clusters=int(n_clusters), n_batches=int(n_batches),
                         methods=tuple(methods), merge=merge, neighbours=int(neighbours), seed=int(seed),
                         manifold=manifold(name))


def silhouette_rows(result) -> list[dict]:
    """The silhouette table: ours next to the paper's, per method."""
    rows = []
    for r in result.results:
        rows.append({
            "method": r.method,
            "silhouette (ours)": round(r.silhouette, 4),
            "silhouette (paper)": PAPER_SILHOUETTE.get(r.method),
            "seconds": round(r.seconds, 2),
            "smallest cluster": int(r.sizes.min()),
            "largest cluster": int(r.sizes.max()),
        })
    return rows


def show_result(result) -> None:
    """Metrics, the silhouette table, fig. 2 and downloads of a ClusterResult."""
    c = result.config
    m = st.columns(4)
    m[0].metric("points", f"{c.n_points:,}")
    m[1].metric("batch size M", f"{c.batch_size:,}")
    m[2].metric("silhouette sample", f"{len(result.silhouette_index):,}")
    m[3].metric("compute time", f"{result.seconds:.2f} s")
    st.subheader("Silhouette on FS distance")
    st.caption("Paper: 1000 points, 10 clusters, 5 batches (section 3.1).")
    st.dataframe(silhouette_rows(result), hide_index=True)
    figs = cluster_figures(result)
    st.subheader("Fig. 2: distance matrices")
    st.plotly_chart(figs["heatmaps"], key="fig_heatmaps")
    st.plotly_chart(figs["silhouette"], key="fig_silhouette")
    stem = f"clustering_N{c.n_points}_C{c.n_clusters}_B{c.n_batches}_seed{c.seed}"
    d = st.columns(3)
    d[0].download_button("Summary (JSON)", json.dumps(result.summary(), indent=2), f"{stem}.json", "application/json")
    d[1].download_button("Labels (CSV)", result.labels_csv, f"{stem}.csv", "text/csv")
    d[2].download_button("Figures (HTML)", lambda: figures_html(figs, title=stem), f"{stem}.html", "text/html")


def main() -> None:
    st.title("Clustering")
    st.markdown(ABOUT)
    try:
        config = clustering_controls()
        job_section(
            "clustering", config, show_result, hint="Choose the points, clusters and batches, then press Run.",
            cost_text=f" for {', '.join(config.methods)}",
        )
    except MetricflowError as err:
        st.error(str(err))


main()
keep_address()
