"""The errors of catalog commands, one tree (the API maps each to its status):

CatalogError
├── NotFound     404  no such track, playlist or project, or the caller may not know of it
├── NotAllowed   403  the caller may see it, but their role does not allow this
├── Invalid      422  the request names something unusable (an asset of another project)
└── Conflict     409  the state does not allow it (the track is in the playlist already)
"""

from __future__ import annotations


class CatalogError(Exception):
    """Base of the errors of catalog commands."""


class NotFound(CatalogError):
    def __init__(self, what: str) -> None:
        self.what = what
        super().__init__(f"no such {what}")


class NotAllowed(CatalogError):
    pass


class Invalid(CatalogError):
    def __init__(self, code: str, message: str) -> None:
        self.code = code
        super().__init__(message)


class Conflict(CatalogError):
    def __init__(self, code: str, message: str) -> None:
        self.code = code
        super().__init__(message)
