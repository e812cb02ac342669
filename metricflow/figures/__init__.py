"""Figure builders: pure functions from results to plotly figures, one module per study.

``common`` holds the shared pieces (colours, the generic histogram, HTML and PNG output);
``sample``, ``flow``, ``theory``, ``clustering``, ``generalisation``, ``tuning``, ``networks``,
``donaldson`` and ``methods`` hold the figures of one study each. Every public builder is
re-exported here, so ``from metricflow.figures import flow_figures`` works. The builders
import studies and lower layers only (never the jobs, reproduce or cli layers), and never Streamlit.
"""

from metricflow.figures.classical import classical_figures, classical_functional_figure, classical_label, classical_sigma_figure
from metricflow.figures.clustering import (
    HEATMAP_TITLES,
    cluster_figures,
    cluster_flow_figure,
    cluster_heatmap_figure,
    silhouette_figure,
)
from metricflow.figures.common import BINS, COLOURS, figure_png, figures_html, histogram, log_ticks
from metricflow.figures.partial import partial_figures
from metricflow.figures.donaldson import (
    donaldson_convergence_figure,
    donaldson_figures,
    donaldson_sigma_figure,
    donaldson_sweep_figure,
    donaldson_time_figure,
    psi_label,
)
from metricflow.figures.flow import flow_figures, flow_gain_figure, flow_label, flow_nonpd_figure, flow_sigma_figure
from metricflow.figures.generalisation import generalisation_figures, noise_gain_figure, scaling_figure
from metricflow.figures.methods import (
    methods_figures,
    methods_points_figure,
    methods_sentences,
    methods_table_figure,
    methods_table_rows,
    methods_time_figure,
)
from metricflow.figures.networks import (
    ntk_spectrum_figure,
    ntk_wasserstein_figure,
    trained_kernel_figure,
    training_figures,
    training_sigma_figure,
    width_sweep_figure,
)
from metricflow.figures.sample import chart_bar, eta_histogram, points_figures, points_scatter, weights_histogram
from metricflow.figures.theory import (
    kernel_curves_figure,
    locality_profiles_figure,
    locality_width_figure,
    theory_figures,
    width_error_figure,
)
from metricflow.figures.tuning import tuning_convergence_figure, tuning_figures, tuning_params_figure

__all__ = [
    # classical flows
    "classical_figures", "classical_functional_figure", "classical_label", "classical_sigma_figure",
    # common
    "COLOURS",
    "BINS",
    "histogram",
    "figures_html",
    "figure_png",
    "log_ticks",
    # partial
    "partial_figures",
    # sample
    "weights_histogram",
    "eta_histogram",
    "chart_bar",
    "points_scatter",
    "points_figures",
    # flow
    "flow_label",
    "flow_sigma_figure",
    "flow_gain_figure",
    "flow_nonpd_figure",
    "flow_figures",
    # theory
    "kernel_curves_figure",
    "width_error_figure",
    "locality_profiles_figure",
    "locality_width_figure",
    "theory_figures",
    # clustering
    "HEATMAP_TITLES",
    "cluster_heatmap_figure",
    "silhouette_figure",
    "cluster_figures",
    "cluster_flow_figure",
    # generalisation
    "noise_gain_figure",
    "scaling_figure",
    "generalisation_figures",
    # tuning
    "tuning_convergence_figure",
    "tuning_params_figure",
    "tuning_figures",
    # networks
    "training_sigma_figure",
    "ntk_spectrum_figure",
    "ntk_wasserstein_figure",
    "width_sweep_figure",
    "trained_kernel_figure",
    "training_figures",
    # donaldson
    "donaldson_sigma_figure",
    "donaldson_time_figure",
    "donaldson_convergence_figure",
    "donaldson_figures",
    "donaldson_sweep_figure",
    "psi_label",
    # methods compared
    "methods_time_figure",
    "methods_points_figure",
    "methods_table_rows",
    "methods_table_figure",
    "methods_sentences",
    "methods_figures",
]
