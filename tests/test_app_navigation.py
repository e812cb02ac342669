"""app.py's navigation under streamlit.testing.v1.AppTest: the home page lists the pages of
dashboard.PAGES, and the sidebar's Dask scheduler field is on every page."""

from pathlib import Path

import pytest

from apptest import ROOT, open_app
from dashboard import HOME, PAGES

pytestmark = pytest.mark.usefixtures("cache_dir")


def sidebar_labels(at) -> list[str]:
    return [t.label for t in at.sidebar.text_input]


def test_every_page_of_the_list_exists_once():
    paths = [HOME.path, *(p.path for p in PAGES)]
    assert len(set(paths)) == len(paths) and len({p.url for p in PAGES}) == len(PAGES)
    assert all((ROOT / path).is_file() for path in paths)
    scripts = {str(p.relative_to(ROOT)) for p in Path(ROOT / "pages").glob("*.py")}
    assert scripts == set(paths), f"add the pages {sorted(scripts - set(paths))} to dashboard.PAGES"
    # Streamlit runs a page of pages/ on its own (without app.py) on a fresh server's first
    # visit to its address, so each page draws the sidebar itself.
    for path in paths:
        assert "\nscheduler_sidebar()" in (ROOT / path).read_text(), f"{path} does not draw the sidebar"


def test_a_page_run_on_its_own_has_the_scheduler_field():
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(ROOT / PAGES[1].path), default_timeout=120).run()
    assert not at.exception and sidebar_labels(at) == ["Dask scheduler"]


def test_the_app_opens_on_the_methods_page():
    at = open_app()
    assert PAGES[0].title == "Methods compared" and at.title[0].value == "Methods compared"
    assert "Dask scheduler" in sidebar_labels(at)


def test_home_page_lists_the_pages_of_the_navigation():
    at = open_app(HOME.path)
    assert at.title[0].value == "metricflow"
    text = "\n".join(m.value for m in at.markdown)
    for page in PAGES:
        assert f"**{page.title}**: {page.description}" in text
    for group in {p.group for p in PAGES}:
        assert f"**{group}**" in text
    assert "Dask scheduler" in sidebar_labels(at)


def test_the_scheduler_field_is_in_the_sidebar_on_every_page():
    at = open_app()
    for page in PAGES:
        at.switch_page(page.path).run()
        assert not at.exception, (page.path, at.exception)
        assert at.title[0].value.startswith(page.title.split()[0]), (page.path, at.title[0].value)
        assert sidebar_labels(at) == ["Dask scheduler"], page.path


@pytest.fixture
def no_dask(monkeypatch):
    """Records every attempt to make a Dask executor or client (there must be none)."""
    from metricflow.jobs import dask as dask_executor

    tried = []

    def refuse(*args, **kwargs):
        tried.append(args)
        raise AssertionError("a Dask connection was attempted")

    monkeypatch.setattr(dask_executor, "executor_for", refuse)
    monkeypatch.setattr(dask_executor.DaskExecutor, "__init__", refuse)
    monkeypatch.delenv("METRICFLOW_SCHEDULER", raising=False)
    return tried


def points_page():
    from streamlit.testing.v1 import AppTest

    return AppTest.from_file(str(ROOT / PAGES[1].path), default_timeout=120)


def run_points(at) -> None:
    """Run a 100-point sample on the Points page (the store's executor is used)."""
    at.number_input(key="points_n").set_value(100).run()
    at.button(key="points_run").click().run()
    assert not at.exception, at.exception


def test_the_sidebar_field_cannot_choose_the_scheduler(no_dask):
    """The field is read-only, and a value sent for it anyway is never used."""
    at = points_page().run()
    field = at.sidebar.text_input[0]
    assert field.label == "Dask scheduler" and field.disabled and field.value == ""
    field._assert_can_interact = lambda: None  # a browser that sends a value anyway
    field.set_value("tcp://127.0.0.1:9").run()
    run_points(at)
    assert any(c.value.startswith("Job ") for c in at.caption)  # it ran, here
    assert not at.sidebar.error and no_dask == []


def test_a_query_parameter_cannot_choose_the_scheduler(no_dask):
    at = points_page()
    for name in ("scheduler", "sidebar_scheduler", "dask", "METRICFLOW_SCHEDULER"):
        at.query_params[name] = "tcp://127.0.0.1:9"
    at.run()
    run_points(at)
    assert any(c.value.startswith("Job ") for c in at.caption) and no_dask == []
    assert not {"scheduler", "sidebar_scheduler", "dask", "METRICFLOW_SCHEDULER"} & set(at.query_params)


def test_no_page_takes_an_upload():
    """No file a visitor uploads can be loaded: no page has an upload widget."""
    at = open_app()
    for page in (HOME, *PAGES):
        at.switch_page(page.path).run()
        assert not at.exception and at.get("file_uploader") == [], page.path
    for path in (ROOT / "pages").glob("*.py"):
        assert "file_uploader" not in path.read_text(), path


def test_the_operator_sets_the_scheduler_and_the_sidebar_shows_it(monkeypatch):
    """$METRICFLOW_SCHEDULER is shown, read-only; one that cannot be reached fails a Run with
    one line and the page stays up."""
    monkeypatch.setenv("METRICFLOW_SCHEDULER", "tcp://127.0.0.1:9")
    at = points_page().run()
    field = at.sidebar.text_input[0]
    assert field.value == "tcp://127.0.0.1:9" and field.disabled
    run_points(at)
    assert any("cannot reach the Dask scheduler at tcp://127.0.0.1:9" in e.value for e in at.error), \
        [e.value for e in at.error]
