"""Beyond the paper: every method on one sigma-time axis (issue 17; docs/METHODS.md).

The paper's closing argument (section 3.3, fig. 3) is that fixed kernels saturate while
finite networks keep learning, by a factor 10-100 in sigma. This section runs the methods
comparison (``metricflow.studies.methods``): Donaldson's balanced and sigma-optimised metrics,
the delta, cutoff-Gaussian and ReLU-NTK flows, the trained-kernel flow, the metric and phi
networks and the classical flows of appendix B, each measured on fresh points against the same
reference kappa.
"""

from __future__ import annotations

import math

from metricflow.figures import methods_points_figure, methods_time_figure
from metricflow.reproduce.section import PaperNumber, Rows, Section, fmt
from metricflow.studies.methods import MethodsConfig

__all__ = ["METHODS_SECTION", "COMPARISON"]

KEY = "methods"
COMPARISON = "methods"  # the one piece: the whole comparison, a fan-out of cached jobs

# The sizes of each mode: the study's presets, and a seconds-long one for tests.
SIZES = {
    "full": ("full", {}),
    "quick": ("quick", {}),
    "tiny": ("quick", dict(n_test=500, k_max=2, donaldson_points=5000, opt_steps=10, opt_points=500,
                           flow_train=100, flow_steps=4, network_points=1000, epochs=2, phi=False,
                           trained_kernel=False, classical_points=500, classical_steps=3)),
}

NUMBERS = (
    PaperNumber("methods-network-vs-kernel", KEY,
                "best fixed-kernel sigma / best network sigma, same test points and kappa",
                "10-100", None, ("range", 10.0, 100.0),
                "At our sizes the networks are trained for a fixed, small budget (docs/METHODS.md); the ratio "
                "grows with the epochs, while the fixed kernels' sigma stays where it is."),
    PaperNumber("methods-kernels-saturate", KEY,
                "fixed kernels: sigma at the last step / sigma half-way (1 = saturated)", "saturate",
                None, ("range", 0.95, 1.05),
                "A flow still moving at its last step has not saturated at these step counts."),
    PaperNumber("methods-classical-vs-network", KEY,
                "best classical-flow sigma (appendix B) / best network sigma, same test points and kappa",
                "> 1 (fixed-kernel flows, Ricci flow too, learn worse)", None, ("range", 1.0, math.inf),
                "The projected classical flows have a handful of symmetric parameters; in Donaldson's algebraic "
                "family their kernel moves with H, and at small budgets they beat networks trained for a few "
                "epochs (docs/METHODS.md, \"The classical flows\")."),
)


def configs(config) -> list:
    """[(piece name, MethodsConfig)] of ``config`` (a ReproduceConfig)."""
    preset, changes = SIZES[config.size]
    return [(COMPARISON, MethodsConfig.preset(preset, seed=config.seed, **changes))]


def measure(results: dict, rows: Rows) -> None:
    """The network/kernel ratio of best sigma, and how far the fixed kernels still move."""
    r = results.get(COMPARISON)
    if r is None:
        for n in NUMBERS:
            rows.missing(n.id, COMPARISON)
        return
    c = r.config
    settings = (f"one set of {c.n_test:,} fresh test points for every method, flows {c.flow_train:,} train points x {c.flow_steps} "
                f"steps, metric network {c.network_points:,} points x {c.epochs} epochs, seed {c.seed}")
    v = r.verdict()
    fixed, nets = v["fixed_kernels"], v["networks"]
    ratio = None
    if fixed and nets and fixed["sigma"] and nets["sigma"]:
        ratio = fixed["sigma"] / nets["sigma"]
    text = "n/a" if ratio is None else f"{fmt(ratio)} ({fixed['method']} {fixed['sigma']:.4f} / {nets['method']} {nets['sigma']:.4f})"
    rows.add("methods-network-vs-kernel", ratio, text, settings)
    change = v["kernel_late_change"]
    late = None if change is None else change["min"]
    rows.add("methods-kernels-saturate", late,
             "n/a" if change is None else f"{fmt(change['min'])} to {fmt(change['max'])}", settings)
    found = [b for b in (v.get("classical"), v.get("fixed_basis")) if b and b["sigma"] is not None]
    best = min(found, key=lambda b: b["sigma"], default=None)
    ratio = best["sigma"] / nets["sigma"] if best and nets and nets["sigma"] else None
    text = "n/a" if ratio is None else (
        f"{fmt(ratio)} ({best['method']} {best['sigma']:.4f} ± {best['sigma_se']:.4f} / "
        f"{nets['method']} {nets['sigma']:.4f} ± {nets['sigma_se']:.4f})")
    rows.add("methods-classical-vs-network", ratio, text,
             f"{settings}; classical flows on {c.classical_points:,} points, {c.classical_steps} steps "
             f"(Calabi {c.calabi_steps})")


def figures(results: dict) -> list:
    """sigma against wall time and against the points used, every method."""
    if COMPARISON not in results:
        return []
    return [methods_time_figure(results[COMPARISON]), methods_points_figure(results[COMPARISON])]


METHODS_SECTION = Section(
    key=KEY,
    title="Beyond the paper: every method on one σ–time axis",
    paper="Fixed kernels saturate while finite networks keep learning and reach a sigma 10-100 times lower "
          "(section 3.3); Donaldson's balanced metrics are the classical discrete flow (introduction).",
    numbers=NUMBERS,
    configs=configs,
    measure=measure,
    figures=figures,
)
