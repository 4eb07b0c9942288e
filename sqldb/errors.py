"""The SQL layer's errors. Driver errors (asyncpg, sqlite3, the network) are translated at each
backend's boundary; anything else, a bug in the caller included, passes through as itself.

    DatabaseError              a statement failed in the database (500)
    ├── IntegrityError         a constraint (unique, foreign key, check, not null) refused it
    ├── RowCountError          a statement run by `execute_changing` changed another number of
                               rows than it was to
    └── DatabaseUnavailable    the database cannot be reached or failed (503, retry later);
                               the same driver errors as the event store's StoreUnavailableError
                               (`dbdrivers`)
"""

from __future__ import annotations


class DatabaseError(Exception):
    """Base of the SQL layer's errors."""


class IntegrityError(DatabaseError):
    """A constraint (unique, foreign key, check, not null) refused the statement."""


class RowCountError(DatabaseError):
    """A statement run by `execute_changing` changed another number of rows than it was to: a
    row it was to change is not as the caller last saw it (another writer moved it, or removed
    it)."""

    def __init__(self, changed: int, expected: int) -> None:
        rows = "one row" if expected == 1 else f"{expected} rows"
        super().__init__(f"the statement was to change {rows}, and changed {changed}")
        self.changed = changed
        self.expected = expected


class DatabaseUnavailable(DatabaseError):
    """The database cannot be reached or failed."""
