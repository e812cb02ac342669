"""The Clustering page (pages/4_Clustering.py) under streamlit.testing.v1.AppTest."""

import json

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from apptest import open_page, run_until_done
from metricflow.studies.clustering import PAPER_SILHOUETTE

pytestmark = pytest.mark.usefixtures("cache_dir")


def page() -> AppTest:
    return open_page("pages/4_Clustering.py")


def test_page_renders_with_estimate():
    at = page()
    assert at.title[0].value == "Clustering"
    assert any("Estimate" in c.value and "batched, full, birch, graph" in c.value for c in at.caption)
    assert any("press Run" in i.value for i in at.info)


def test_bad_sizes_show_an_error():
    at = page()
    at.number_input(key="clustering_points").set_value(50)
    at.number_input(key="clustering_clusters").set_value(20).run()
    assert not at.exception
    assert any("fewer than the 20 clusters" in e.value for e in at.error)


def test_small_config_runs_end_to_end(cache_dir):
    at = page()
    at.number_input(key="clustering_points").set_value(300)
    at.number_input(key="clustering_clusters").set_value(4)
    at.number_input(key="clustering_batches").set_value(3).run()
    at.button[0].click().run()
    assert "clustering_job" in at.session_state
    run_until_done(at)
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["points"] == "300" and metrics["batch size M"] == "100"
    table = at.dataframe[0].value
    assert list(table["method"]) == ["batched", "full", "birch", "graph"]
    assert table.set_index("method").loc["batched", "silhouette (paper)"] == PAPER_SILHOUETTE["batched"]
    heat = json.loads(at.get("plotly_chart")[0].proto.spec)
    maps = [t for t in heat["data"] if t["type"] == "heatmap"]
    assert len(maps) == 3  # fig. 2: unordered, batched, full

    def matrix(trace):
        z = trace["z"]
        if isinstance(z, dict):  # a typed array
            import base64
            return np.frombuffer(base64.b64decode(z["bdata"]), dtype=z["dtype"]).reshape(
                [int(v) for v in str(z["shape"]).split(",")])
        return np.asarray(z, dtype=float)

    unordered, batched, full = (matrix(t) for t in maps)
    assert unordered.shape == batched.shape == full.shape == (300, 300)
    np.testing.assert_allclose(np.diag(batched), 0, atol=1e-6)
    # an ordering only permutes the points: the same multiset of distances
    np.testing.assert_allclose(np.sort(unordered.ravel()), np.sort(batched.ravel()), atol=1e-6)
    assert len(at.get("download_button")) == 3
