"""One check turns an access token into a user, for the REST API and the collaboration sockets
alike: every reason to refuse a token is the same error with the same message."""

from __future__ import annotations

import time

import pytest

from jacameno.accounts import User
from jacameno.auth.tokens import AccessTokens
from jacameno.bearer import INVALID, Authenticator, NotAuthenticated

SECRET = "s" * 64
ALICE = User("alice-id", "alice@example.com", "Alice", None, {}, 0, 0)


class _Users:
    def __init__(self, *users: User) -> None:
        self.users = {user.id: user for user in users}

    async def get(self, user_id: str) -> User | None:
        return self.users.get(user_id)


async def test_a_valid_token_names_its_user_and_when_it_expires() -> None:
    tokens = AccessTokens(SECRET, ttl_seconds=60, leeway=0)
    bearer = await Authenticator(tokens, _Users(ALICE)).authenticate(tokens.issue(ALICE.id))
    assert bearer.user == ALICE
    assert time.time() < bearer.expires_at <= time.time() + 60


@pytest.mark.parametrize("reason", ["garbage", "expired", "forged", "deleted user"])
async def test_every_refused_token_is_not_authenticated_alike(reason: str) -> None:
    tokens = AccessTokens(SECRET, ttl_seconds=60, leeway=0)
    users = _Users(ALICE)
    token = {
        "garbage": "not-a-jwt",
        "expired": tokens.issue(ALICE.id, now=time.time() - 120),
        "forged": AccessTokens("f" * 64).issue(ALICE.id),
        "deleted user": tokens.issue("nobody"),
    }[reason]
    with pytest.raises(NotAuthenticated) as refused:
        await Authenticator(tokens, users).authenticate(token)
    assert str(refused.value) == INVALID
