"""Metric flows: the losses, the kernel flow (3.5) with its update rules and chart sampling,
and Donaldson's T-operator iteration (the classical discrete flow)."""
