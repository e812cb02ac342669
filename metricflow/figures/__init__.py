"""Figure builders: pure functions from results to plotly figures."""
