"""Finite networks that learn the metric: models and training, the metric-NTK, saved models."""
