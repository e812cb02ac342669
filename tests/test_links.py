"""Every view is a link: a page's inputs live in its address (dashboard.linked, keep_address), and
a deep link on a fresh server opens inside app.py's navigation (dashboard.enter_page).

AppTest covers the helper and, for every page, the hand-over: AppTest resets Streamlit's
pages/-folder flag before each run, so each run is a fresh server's first visit. Chromium checks
the real thing on real ``streamlit run app.py`` servers.
"""

import os

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from apptest import ROOT, TIMEOUT
from chromium import ARTIFACTS, CHROMIUM, chromium, serve
from dashboard import _BAD, HOME, PAGES, _parse, _text

pytestmark = pytest.mark.usefixtures("cache_dir")

needs_chromium = pytest.mark.skipif(not os.path.exists(CHROMIUM), reason=f"{CHROMIUM} is absent")


# ---- the helper under AppTest ------------------------------------------------------------


BAD = "not a value of the widget"


@pytest.mark.parametrize("default, options, text, expected", [
    (10, None, "200", 200), (10, None, "abc", BAD), (10, None, "2.5", BAD), (10, None, "9" * 20, BAD),
    (0.5, None, "1e-06", 1e-06), (0.5, None, "nan", BAD), (0.5, None, "inf", BAD),
    (True, None, "false", False), (True, None, "maybe", BAD), ("0", None, "1+0.2j", "1+0.2j"),
    ("0", None, "x" * 600, BAD), ("quintic", ["quintic", "cubic"], "cubic", "cubic"),
    ("quintic", ["quintic", "cubic"], "sextic", BAD), (100, [10, 100], "10", 10),
    ([], ["a", "b"], "", []), ([], ["a", "b"], "b,a", ["b", "a"]), ([], ["a", "b"], "a,c", BAD),
])
def test_a_query_value_is_parsed_as_the_widget_would_take_it(default, options, text, expected):
    value = _parse(text, default, options)
    if expected is BAD:
        assert value is _BAD
    else:
        assert value == expected and type(value) is type(expected)
        assert _parse(_text(value), default, options) == expected  # the address round-trips


def points(query: dict) -> AppTest:
    at = AppTest.from_file(str(ROOT / "pages/1_Points.py"), default_timeout=TIMEOUT)
    at.query_params.update(query)
    at.run()
    assert not at.exception, at.exception
    return at


def test_a_link_restores_the_widgets_and_the_address_follows_them():
    at = points({"points_n": "200", "points_seed": "7", "points_manifold": "cubic", "points_psi": "0.5",
                 "scheduler": "tcp://10.0.0.1:8786", "other": "x"})
    assert [n.value for n in at.number_input] == [200, 7]
    assert at.selectbox[0].value == "cubic" and at.text_input[0].value == "0.5"
    assert at.sidebar.text_input[0].value == "" and "scheduler" not in at.session_state  # never linked
    assert dict(at.query_params) == {"points_manifold": "cubic", "points_psi": "0.5", "points_n": "200",
                                     "points_seed": "7"}
    at.number_input[0].set_value(300).run()  # after the first run, session_state rules
    assert at.query_params["points_n"] == "300" and at.number_input[1].value == 7


def test_bad_query_values_fall_back_or_show_the_typed_error():
    at = points({"points_n": "abc", "points_manifold": "nope", "points_seed": "-5"})
    assert at.number_input[0].value == 10_000 and at.selectbox[0].value == "quintic"
    assert at.number_input[1].value == -5  # as if typed: out of range, marked
    assert any("Seed: at least 0" in e.value for e in at.error)
    at = points({"points_n": "5"})
    assert any("Run is disabled: Points N 5 is below the minimum 10" in e.value for e in at.error)
    assert at.button(key="points_run").disabled
    at = points({"points_psi": "zzz"})
    assert any("psi must be a complex number" in e.value for e in at.error)


def _linked_widgets():
    import streamlit as st

    from dashboard import count_input, enter_page, linked

    enter_page()
    st.checkbox("Box", key=linked("box", True))
    count_input(st, "N", 10, 10**6, key=linked("n", 5000))


def test_a_widget_the_browser_never_got_reaches_it_with_its_value():
    """A run stopped for a rerun after registering a widget but before sending it leaves the
    browser without it; the next run sends the widget, and the browser, holding no value for
    it, takes the element's default (unchecked, 0) unless the element carries the session's
    value. AppTest sending no widget states is that browser."""
    from streamlit.proto.WidgetStates_pb2 import WidgetStates

    at = AppTest.from_function(_linked_widgets, default_timeout=TIMEOUT)
    at.run()
    at._run(WidgetStates())  # the browser holds no widget
    box, n = at.checkbox[0].proto, at.number_input[0].proto
    assert (box.value, box.set_value, box.default) == (True, True, False)  # default: Streamlit's own
    assert (n.value, n.set_value, n.default) == (5000, True, 0)
    at.checkbox[0].uncheck().run()  # the browser holds the values: its change stands, none is pushed
    assert at.checkbox[0].value is False and not at.checkbox[0].proto.set_value
    assert at.number_input[0].value == 5000 and not at.number_input[0].proto.set_value


@pytest.fixture
def layouts(monkeypatch) -> list:
    """The layouts st.set_page_config is called with (app.py calls it; a page never does)."""
    calls = []
    set_page_config = st.set_page_config
    monkeypatch.setattr(st, "set_page_config", lambda *a, **k: (calls.append(k.get("layout")), set_page_config(*a, **k)))
    return calls


# Pages that do not call enter_page() yet (their owner applies it): remove a page once it does.
NOT_YET: set = set()


def test_every_page_run_by_the_folder_navigation_hands_over_to_app_py(layouts):
    """AppTest resets Streamlit's pages/ flag before every run, so switching to a page runs it
    the way a fresh server runs a deep link: on its own. app.py must then take over (its
    set_page_config is the sign), and the page shows with the sidebar."""
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=TIMEOUT).run()
    assert not at.exception, at.exception
    alone = set()
    for info in [HOME, *PAGES]:
        layouts.clear()
        at.switch_page(info.path).run()
        assert not at.exception, (info.path, at.exception)
        if layouts != ["wide"]:
            alone.add(info.path)
        title = "metricflow" if info is HOME else info.title.split()[0]
        assert at.title[0].value.startswith(title), (info.path, at.title[0].value)
        assert [t.label for t in at.sidebar.text_input] == ["Dask scheduler"], info.path
    assert alone == NOT_YET, f"ran without app.py: {sorted(alone)}"


def test_a_page_link_carries_only_its_own_inputs():
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=TIMEOUT).run()
    before: set = set()
    for info in (PAGES[1], PAGES[2], HOME):  # Points, Kernel flow, Home
        at.switch_page(info.path).run()
        assert not at.exception, (info.path, at.exception)
        keys = set(at.query_params)
        assert bool(keys) == (info is not HOME) and not keys & before, (info.path, keys & before)
        before = keys


# ---- the real app in chromium ------------------------------------------------------------


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """One fresh ``streamlit run app.py`` for this module's browser tests (its store in a temporary
    cache folder): yields {"url", "cache", "served"}. The deep-link test runs first (file order)
    and needs it fresh; the others set "served"."""
    folder = tmp_path_factory.mktemp("links")
    with serve(folder, METRICFLOW_AUTOSTART="0") as (url, _):
        yield {"url": url, "cache": folder / "cache", "served": False}


@pytest.fixture
def browser():
    ARTIFACTS.mkdir(exist_ok=True)
    with chromium() as b:
        yield b


def new_page(browser):
    """A page in a new browser context: a new Streamlit session, no cookies or storage."""
    return browser.new_context(viewport={"width": 1400, "height": 1000}).new_page()


def expect_app_frame(page, title: str) -> None:
    """The page shows ``title`` inside app.py's grouped navigation and wide layout."""
    from playwright.sync_api import expect

    nav = page.locator("[data-testid='stSidebarNav']")
    expect(nav).to_contain_text("Methods compared", timeout=60_000)
    expect(page.locator("h1").first).to_contain_text(title.split()[0], timeout=60_000)
    links = [t.strip() for t in nav.locator("a").all_inner_texts()]
    assert not any(t == "app" or t.endswith("\napp") for t in links), links
    assert any(t.endswith("Points") for t in links) and any(t.endswith("Home") for t in links), links
    for section in ("Overview", "Geometry", "Kernel flows", "Networks", "Classical"):
        expect(nav).to_contain_text(section)
    width = page.locator("[data-testid='stMainBlockContainer']").evaluate("e => e.getBoundingClientRect().width")
    assert width > 1000, f"{title}: main block {width:.0f} px wide, not the wide layout"


def overflowing_metrics(page) -> list[str]:
    """The st.metric values cut off by their column."""
    return page.evaluate(
        "Array.from(document.querySelectorAll('[data-testid=stMetricValue]'))"
        ".filter(v => Array.from(v.querySelectorAll('*')).concat([v]).some(e => e.scrollWidth > e.clientWidth + 1))"
        ".map(v => v.innerText)"
    )


@needs_chromium
def test_a_deep_link_on_a_fresh_server_opens_in_the_app_frame(server, browser):
    """The first request the server ever gets is a page's address. (Later deep links, also in
    new sessions, meet a server that has called st.navigation and run app.py anyway: visiting
    every page's address on one server would check only the first. The hand-over of every page
    is checked under AppTest above, where each run is a fresh server's first visit.)"""
    from playwright.sync_api import expect

    assert not server["served"], "run this test first: it needs a server that has served nothing"
    first = next(p for p in PAGES if p.title == "Generalisation")
    page = new_page(browser)
    page.goto(f"{server['url']}/{first.url}")
    expect_app_frame(page, first.title)
    expect(page.get_by_role("button", name="Run")).to_be_visible(timeout=60_000)
    page.screenshot(path=str(ARTIFACTS / "links-deep.png"))
    page.context.close()


@needs_chromium
def test_a_points_link_restores_its_widgets_and_its_stored_result(server, browser, monkeypatch):
    from playwright.sync_api import expect

    from metricflow.geometry.manifolds import manifold
    from metricflow.geometry.points import SampleConfig
    from metricflow.jobs import run_job
    from metricflow.parse import complex_number

    url, cache = server["url"], server["cache"]
    server["served"] = True
    monkeypatch.setenv("METRICFLOW_CACHE", str(cache))
    run_job(SampleConfig(manifold("quintic", complex_number("0")), 200, 7))  # stored before the link opens
    page = new_page(browser)
    page.goto(f"{url}/Points?points_n=200&points_seed=7&scheduler=tcp%3A%2F%2F10.0.0.1%3A8786")
    expect(page.get_by_label("Points N")).to_have_value("200", timeout=60_000)
    expect(page.get_by_label("Seed")).to_have_value("7")
    page.wait_for_function("document.querySelectorAll('.js-plotly-plot').length >= 4", timeout=60_000)  # no Run
    expect(page.get_by_text("σ of g_FS")).to_be_visible()
    expect(page.get_by_text("200 ·")).to_be_visible()
    expect(page.get_by_label("Dask scheduler")).to_have_value("")  # never from the address
    expect_app_frame(page, "Points")
    assert "scheduler" not in page.url and "points_n=200" in page.url, page.url
    assert overflowing_metrics(page) == []
    page.set_viewport_size({"width": 1400, "height": 1800})
    page.wait_for_timeout(500)
    page.screenshot(path=str(ARTIFACTS / "links-points.png"))
    seed = page.get_by_label("Seed")
    seed.fill("8")
    seed.press("Enter")
    page.wait_for_url("**points_seed=8**", timeout=30_000)  # the address follows the widgets

    # bad values: the default, or the error typing them gives; the page stays up
    page.goto(f"{url}/Points?points_n=abc&points_manifold=nope&points_seed=-5")
    expect(page.get_by_text("Seed: at least 0")).to_be_visible(timeout=60_000)
    expect(page.get_by_label("Points N")).to_have_value("10000")
    page.goto(f"{url}/Points?points_n=5")
    expect(page.get_by_text("Run is disabled: Points N 5 is below the minimum 10")).to_be_visible(timeout=60_000)
    expect(page.get_by_role("button", name="Run")).to_be_disabled()
    page.goto(f"{url}/Points?points_psi=zzz")
    expect(page.get_by_text("psi must be a complex number")).to_be_visible(timeout=60_000)
    expect(page.get_by_role("heading", name="Points")).to_be_visible()
    page.context.close()
