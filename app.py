"""metricflow dashboard: ``streamlit run app.py``.

The one entry point: it builds the navigation from dashboard.PAGES (``app_pages``), sets the page
config once (the wide layout) and runs the page chosen; it opens on the first page, Methods
compared.

On a fresh server Streamlit takes pages/ for its own page folder and runs a page's file on its
own at the first visit to its address, without this file. So every page calls
``dashboard.enter_page()`` first: there it calls ``st.navigation`` with these same pages (which
makes Streamlit ignore pages/ for good) and reruns, and this file then runs on that page with the
same query string: a deep link shows the grouped navigation and the wide layout
(docs/ARCHITECTURE.md, "The dashboard's pages/ folder").
"""

import streamlit as st

from dashboard import HOME, app_pages

page = st.navigation(app_pages(), expanded=True)
st.set_page_config(page_title="metricflow" if page.title == HOME.title else f"{page.title} · metricflow",
                   layout="wide")
page.run()
