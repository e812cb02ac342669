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


def test_a_scheduler_that_cannot_be_reached_is_an_error_in_the_sidebar():
    at = open_app(PAGES[0].path)
    at.sidebar.text_input[0].set_value("tcp://127.0.0.1:9").run()
    assert not at.exception
    assert any("cannot reach the Dask scheduler" in e.value for e in at.sidebar.error), \
        [e.value for e in at.sidebar.error]
    assert at.session_state["scheduler"] == ""
    assert at.title[0].value == PAGES[0].title  # the page still shows
