"""metricflow dashboard: ``streamlit run app.py``.

The one entry point: it sets the page config and runs the page chosen in the navigation,
built from dashboard.PAGES. Every page draws the sidebar (the Dask scheduler field) itself, as
its first widget: Streamlit runs a page of pages/ on its own on a fresh server's first visit to
its address, before app.py has run.
"""

import streamlit as st

from dashboard import HOME, PAGES


def navigation() -> dict[str, list]:
    """The pages as st.Page objects by navigation section, the home page first."""
    sections: dict[str, list] = {HOME.group: [st.Page(HOME.path, title=HOME.title, icon=":material/home:", default=True)]}
    for page in PAGES:
        sections.setdefault(page.group, []).append(st.Page(page.path, title=page.title, url_path=page.url))
    return sections


page = st.navigation(navigation(), expanded=True)
st.set_page_config(page_title="metricflow" if page.title == HOME.title else f"{page.title} · metricflow",
                   layout="wide")
page.run()
