"""The ``cluster`` subcommand: clustering by FS distance (section 3.1, eq. 3.3), fig. 2."""

from __future__ import annotations

from metricflow.cli.options import add_manifold, int_arg
from metricflow.errors import MetricflowError


def add_parser(sub) -> None:
    """Declare the ``cluster`` subcommand on ``sub`` (an argparse subparsers action)."""
    p = sub.add_parser("cluster", help="cluster points by FS distance (section 3.1, eq. 3.3) and report silhouettes")
    p.add_argument("--points", type=int_arg, required=True, help="number of points N")
    p.add_argument("--clusters", type=int_arg, required=True, help="number of clusters C")
    p.add_argument("--batches", type=int_arg, default=5, help="mini-batches B of the batched method (default 5)")
    p.add_argument("--method", action="append", default=None,
                   help="batched, full, birch or graph; repeat for several (default: all that fit)")
    p.add_argument("--merge", default="nearest", help="nearest (default) or greedy merging across batches")
    p.add_argument("--neighbours", type=int_arg, default=6, help="k of the graph method's kNN graph (default 6)")
    p.add_argument("--heatmap", default=None, help="write fig. 2 to this file: .html, or .png (needs kaleido)")
    add_manifold(p)
    p.set_defaults(run=run_cluster, show=show_cluster)


def run_cluster(args) -> dict:
    from metricflow.studies.clustering import ClusterConfig
    from metricflow.jobs.runner import run_job
    from metricflow.geometry.manifolds import manifold

    if args.heatmap is not None and not args.heatmap.lower().endswith((".html", ".htm", ".png")):
        raise MetricflowError(f"--heatmap must name an .html or .png file, got {args.heatmap!r}")
    config = ClusterConfig(
        n_points=args.points, n_clusters=args.clusters, n_batches=args.batches, methods=tuple(args.method or ()),
        merge=args.merge, neighbours=args.neighbours, seed=args.seed, manifold=manifold(args.manifold, args.psi),
    )
    result = run_job(config, cache=not args.no_cache)
    out = result.summary()
    if args.heatmap is not None:
        from metricflow.figures import cluster_heatmap_figure, figure_png

        fig = cluster_heatmap_figure(result)
        try:
            if args.heatmap.lower().endswith(".png"):
                data = figure_png(fig, width=fig.layout.width, height=fig.layout.height)
                with open(args.heatmap, "wb") as f:
                    f.write(data)
            else:
                fig.write_html(args.heatmap, include_plotlyjs=True)
        except OSError as err:
            raise MetricflowError(f"could not write {args.heatmap}: {err.strerror or err}") from None
        out["heatmap"] = args.heatmap
    return out


def show_cluster(r: dict) -> str:
    c = r["config"]
    fmt = lambda v: "n/a" if v is None else f"{v:+.3f}"  # noqa: E731
    lines = [
        f"{c['n_points']:,} points, {c['n_clusters']} clusters, {c['n_batches']} batches of up to {r['batch_size']:,} "
        f"(seed {c['seed']}); silhouette on FS distance over {r['silhouette_points']:,} points",
        f"{'method':<8} {'ours':>7} {'paper':>7} {'seconds':>8}  smallest/largest cluster",
    ]
    for m, score in r["silhouette"].items():
        sizes = r["cluster_sizes"][m]
        lines.append(
            f"{m:<8} {fmt(score):>7} {fmt(r['paper_silhouette'].get(m)):>7} {r['method_seconds'][m]:>8.2f}  "
            f"{min(sizes):,}/{max(sizes):,}"
        )
    lines.append(f"total {r['seconds']:.1f} s" + (f"; heatmap written to {r['heatmap']}" if r.get("heatmap") else ""))
    return "\n".join(lines)
