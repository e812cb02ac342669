"""Home: what the dashboard does, its pages (from dashboard.PAGES), the latest report and the cached results."""

import json
import time

import streamlit as st

from dashboard import PAGES, enter_page, job_store, keep_address, scheduler_sidebar

enter_page()  # a deep link on a fresh server: hands over to app.py's navigation
scheduler_sidebar()  # the sidebar of every page, also when this file runs on its own


def page_list() -> str:
    """The pages of the navigation by section, one line each, as markdown."""
    lines = []
    for group in dict.fromkeys(p.group for p in PAGES):
        lines.append(f"**{group}**\n")
        lines += [f"- **{p.title}**: {p.description}" for p in PAGES if p.group == group]
        lines.append("")
    return "\n".join(lines)


def settings(config_json: str) -> str:
    """A job's config JSON without the type tags, for a table cell."""

    def strip(value):
        if isinstance(value, dict):
            return {k: strip(v) for k, v in value.items() if k != "__type__"}
        return value

    return json.dumps(strip(json.loads(config_json)), separators=(", ", ": ")).replace('"', "")


st.title("metricflow")
st.markdown(
    r"""
Explore **neural-network metric flows** on Calabi–Yau manifolds, after
*Metric flows with neural networks* (Halverson & Ruehle 2024).

A metric $g$ represented by a network with parameters $\theta$ moves when the parameters are
trained by gradient descent on a loss $\ell$. In the continuum limit the metric itself flows,
and the flow is governed by the **metric-NTK** $\Theta$ (eq. 2.7–2.8):

$$
\frac{d g_{ij}(x)}{dt} = -\int_X dx'\, \Theta_{ij\bar k\bar l}(x,x')\,
\frac{\delta \ell}{\delta g_{kl}(x')},
\qquad
\Theta_{ij\bar k\bar l}(x,x') = \sum_I \frac{\partial g_{ij}(x)}{\partial \theta_I}
\frac{\partial \bar g_{kl}(x')}{\partial \theta_I}.
$$

With a learning rate $\eta_{\rm lr}$ and the integral replaced by a Monte-Carlo sum over the
sampled points $x'$ with weights $w(x')$, one step of the flow is (eq. 3.5)

$$
g^{(t+1)}(x) = g^{(t)}(x) - \eta_{\rm lr} \sum_{x'} w(x')\, \Theta(x,x')\,
\frac{\delta \ell}{\delta g(x')}\Big|_{g^{(t)}} .
$$

Different kernels $\Theta$ (from finite networks, their infinite-width limits, or chosen by
hand) give different flows. On the Fermat quintic the loss is the **σ-measure** (eq. B.11),

$$
\sigma = \frac{1}{\mathrm{Vol}(X)} \int_X \mathrm{dvol}\, \bigl|1-\eta\bigr|,
\qquad \eta = \frac{\det g}{\kappa\, |\Omega|^2},
$$

which vanishes exactly for the Ricci-flat metric.
"""
)

st.header("Pages")
st.markdown(page_list())
st.markdown(
    "Every computation is a cached job: the same settings are computed once, by whichever session "
    "asks first, and come back instantly afterwards, also after a restart."
)


st.header("Reproduce the paper")
st.markdown("`python -m metricflow reproduce --out DIR [--quick]` runs every experiment of section 3 "
            "and writes one self-contained report (docs/REPRODUCTION.md).")
try:
    from metricflow.reproduce import latest_report

    report = latest_report()
except Exception as err:  # a broken pointer must not take the home page down
    st.error(f"Could not read the latest report: {err}")
    report = None
if report is None:
    st.info("No report yet.")
else:
    when = time.strftime("%Y-%m-%d %H:%M", time.localtime(report.get("created", 0)))
    st.markdown(f"Latest report: **{report.get('mode')}** mode, {when}, "
                f"{report.get('seconds', 0):.0f} s — `{report['html']}`")
    with open(report["html"], "rb") as f:
        st.download_button("Download report.html", f.read(), file_name="report.html", mime="text/html")

st.header("Cached results")
try:
    jobs = job_store().jobs()
except Exception as err:  # a broken store must not take the home page down
    st.error(f"Could not read the result store: {err}")
    jobs = []
if not jobs:
    st.info("No results yet. Run something on the Points page.")
else:
    rows = []
    for job in jobs:
        rows.append({
            "kind": job.kind,
            "state": job.state,
            "settings": settings(job.config),
            "seconds": round(job.seconds, 2) if job.started else None,
            "submitted": time.strftime("%Y-%m-%d %H:%M", time.localtime(job.submitted)) if job.submitted else "",
            "error": job.error,
            "key": job.key[:12],
        })
    st.dataframe(rows, hide_index=True)
keep_address()  # no inputs: the home page's link is its bare address
