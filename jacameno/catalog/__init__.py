"""The streaming catalog's commands (service.py) and their errors (errors.py)."""
