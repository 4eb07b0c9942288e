"""Who an access token names: one check for the REST API (`Authorization: Bearer`, 401) and the
collaboration sockets (the token in the URL or in-band, close 4401) alike, so that both refuse
the same tokens for the same reasons."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from jacameno.accounts import User
from jacameno.auth.tokens import AccessClaims, AccessTokens, InvalidToken

INVALID = "the access token is invalid or expired"


class NotAuthenticated(Exception):
    """The token is malformed, forged or expired, or names a user who no longer exists. Its
    message is meant for the client (the same whatever the reason)."""


@dataclass(frozen=True, slots=True)
class Bearer:
    """The user a valid access token names, and when the token expires (seconds since the
    epoch)."""

    user: User
    expires_at: int


class Users(Protocol):
    async def get(self, user_id: str) -> User | None:
        """The user with this id, None if there is none (deleted)."""
        ...


class Authenticator:
    def __init__(self, tokens: AccessTokens, accounts: Users) -> None:
        self._tokens = tokens
        self._accounts = accounts

    async def authenticate(self, token: str) -> Bearer:
        """The bearer of `token`: its signature and claims checked, its user loaded. Raises
        NotAuthenticated; a backing store's unavailability passes through as its own error."""
        return await self.bearer(self.verify(token))

    def verify(self, token: str) -> AccessClaims:
        """`token`'s claims, its signature and expiry checked (no read); NotAuthenticated."""
        try:
            return self._tokens.verify(token)
        except InvalidToken as exc:
            raise NotAuthenticated(INVALID) from exc

    async def bearer(self, claims: AccessClaims) -> Bearer:
        """The bearer of verified `claims`: its user loaded. NotAuthenticated if the user no
        longer exists; a backing store's unavailability passes through as its own error."""
        user = await self._accounts.get(claims.user_id)
        if user is None:
            raise NotAuthenticated(INVALID)
        return Bearer(user, claims.expires_at)
