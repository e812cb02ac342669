"""Reproducing the paper's figures and tables."""
