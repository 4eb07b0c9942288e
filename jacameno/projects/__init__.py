"""Projects and their members: commands append events to the project's stream; queries read the
projects read model (projections/projects.py)."""
