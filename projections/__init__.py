"""Projections: the runner and the read models folded from the event log."""
