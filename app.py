"""metricflow dashboard: home page."""

import streamlit as st

st.set_page_config(page_title="metricflow", layout="wide")
st.title("metricflow")
st.markdown(
    """
Explore **neural-network metric flows** on Calabi–Yau manifolds, after
*Metric flows with neural networks* (Halverson & Ruehle 2024).

A metric $g$ represented by a network flows under gradient descent,
$\\dfrac{dg_{ij}(x)}{dt} = -\\int dx'\\, \\Theta_{ijkl}(x,x')\\,\\dfrac{\\delta \\ell(x')}{\\delta g_{kl}(x')}$,
governed by the metric-NTK $\\Theta$. On the Fermat quintic the loss is the
$\\sigma$-measure, $\\sigma = \\int |1-\\eta|$ with $\\eta = \\det g / (\\kappa |\\Omega|^2)$.

The geometry core is in place: sample points with `python -m metricflow sample`.
Pages for points, kernel flows, clustering, generalisation, NTK evolution and
hyperparameter search are coming.
"""
)
