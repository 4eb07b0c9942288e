"""The project document as a whole: restore to a version (service.py) and the auditor's integrity
check of each project's log and snapshots (verify.py)."""
