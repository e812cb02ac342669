"""metricflow dashboard: ``streamlit run app.py``.

The one entry point: it sets the page config and runs the page chosen in the navigation,
built from dashboard.PAGES; it opens on the first of them, Methods compared. Every page draws the sidebar (the Dask scheduler field) itself, as
its first widget: Streamlit runs a page of pages/ on its own on a fresh server's first visit to
its address, before app.py has run.
"""

import streamlit as st

from dashboard import HOME, PAGES


def navigation() -> dict[str, list]:
    """The pages as st.Page objects by navigation section: PAGES[0] (Methods compared) is the
    default page, at the app's root, and the home page follows it in its section."""
    sections: dict[str, list] = {}
    for info in (PAGES[0], HOME, *PAGES[1:]):
        if info is PAGES[0]:
            entry = st.Page(info.path, title=info.title, icon=":material/insights:", default=True)
        elif info is HOME:
            entry = st.Page(info.path, title=info.title, icon=":material/home:", url_path=info.url)
        else:
            entry = st.Page(info.path, title=info.title, url_path=info.url)
        sections.setdefault(info.group, []).append(entry)
    return sections


page = st.navigation(navigation(), expanded=True)
st.set_page_config(page_title="metricflow" if page.title == HOME.title else f"{page.title} · metricflow",
                   layout="wide")
page.run()
