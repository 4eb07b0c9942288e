"""User accounts: an ordinary table (identity is not event-sourced), emails unique and
lower-cased, passwords as argon2id hashes. Deleting an account also appends `user.deleted` to
the user's stream (domain.events): every node follows the log and closes
the user's open collaboration sockets (jacameno.collab.membership)."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from domain import events
from eventstore import EventStore
from jacameno.auth.passwords import Passwords
from projections.tables import fetch_where_in
from sqldb import Database, IntegrityError, Row

_COLUMNS = "id, email, display_name, avatar_url, preferences, created_at, updated_at"


class EmailTaken(Exception):
    """An account with this email exists already."""


@dataclass(frozen=True, slots=True)
class User:
    id: str
    email: str
    display_name: str
    avatar_url: str | None
    preferences: dict[str, Any]
    created_at: int
    updated_at: int

    def public(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "email": self.email,
            "display_name": self.display_name,
            "avatar_url": self.avatar_url,
            "preferences": self.preferences,
            "created_at": self.created_at,
        }


def normalize_email(email: str) -> str:
    return email.strip().lower()


def _user(row: Row) -> User:
    return User(
        id=row["id"],
        email=row["email"],
        display_name=row["display_name"],
        avatar_url=row["avatar_url"],
        preferences=json.loads(row["preferences"]),
        created_at=int(row["created_at"]),
        updated_at=int(row["updated_at"]),
    )


def _now_ms() -> int:
    return int(time.time() * 1000)


class Accounts:
    def __init__(self, db: Database, passwords: Passwords, store: EventStore | None = None) -> None:
        self._db = db
        self._passwords = passwords
        self._store = store

    async def register(self, email: str, password: str, display_name: str) -> User:
        """Create an account; EmailTaken if the (normalized) email is in use."""
        email = normalize_email(email)
        if await self.find_by_email(email) is not None:
            raise EmailTaken(email)
        password_hash = await self._passwords.hash(password)
        now = _now_ms()
        user_id = str(uuid.uuid4())
        try:
            await self._db.execute(
                "INSERT INTO users (id, email, password_hash, display_name, avatar_url,"
                " preferences, created_at, updated_at) VALUES ($1, $2, $3, $4, NULL, '{}', $5, $5)",
                user_id,
                email,
                password_hash,
                display_name,
                now,
            )
        except IntegrityError as exc:
            raise EmailTaken(email) from exc
        return User(user_id, email, display_name, None, {}, now, now)

    async def authenticate(self, email: str, password: str) -> User | None:
        """The account if the password matches; None otherwise (in about the same time whether
        or not the account exists)."""
        row = await self._db.fetchrow(
            f"SELECT {_COLUMNS}, password_hash FROM users WHERE email = $1", normalize_email(email)
        )
        stored = None if row is None else str(row["password_hash"])
        if not await self._passwords.verify(stored, password) or row is None:
            return None
        if stored is not None and self._passwords.needs_rehash(stored):
            await self._db.execute(
                "UPDATE users SET password_hash = $2 WHERE id = $1",
                row["id"],
                await self._passwords.hash(password),
            )
        return _user(row)

    async def get(self, user_id: str) -> User | None:
        row = await self._db.fetchrow(f"SELECT {_COLUMNS} FROM users WHERE id = $1", user_id)
        return None if row is None else _user(row)

    async def get_many(self, user_ids: Sequence[str]) -> dict[str, User]:
        """The users of these ids that exist, by id, in one read (a chunk of ids at a time)."""
        rows = await fetch_where_in(
            self._db, f"SELECT {_COLUMNS} FROM users WHERE id IN ({{marks}})", user_ids
        )
        return {user.id: user for user in map(_user, rows)}

    async def find_by_email(self, email: str) -> User | None:
        row = await self._db.fetchrow(
            f"SELECT {_COLUMNS} FROM users WHERE email = $1", normalize_email(email)
        )
        return None if row is None else _user(row)

    async def update(
        self,
        user: User,
        *,
        display_name: str | None = None,
        avatar_url: str | None = None,
        clear_avatar: bool = False,
        preferences: dict[str, Any] | None = None,
    ) -> User:
        """Change the given fields of the profile; return the account as stored."""
        new_avatar = None if clear_avatar else (avatar_url or user.avatar_url)
        now = _now_ms()
        await self._db.execute(
            "UPDATE users SET display_name = $2, avatar_url = $3, preferences = $4,"
            " updated_at = $5 WHERE id = $1",
            user.id,
            display_name or user.display_name,
            new_avatar,
            json.dumps(preferences if preferences is not None else user.preferences),
            now,
        )
        return await self.get(user.id) or user

    async def delete(self, user_id: str) -> None:
        """Delete the account, then log `user.deleted` (with a store): the user's open sockets
        are closed on every node. Repeating it is harmless (the event is logged again)."""
        await self._db.execute("DELETE FROM users WHERE id = $1", user_id)
        if self._store is not None:
            await self._store.append(events.user_stream(user_id), [events.user_deleted(user_id)])
