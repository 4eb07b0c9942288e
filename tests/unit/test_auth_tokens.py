"""Access tokens and passwords, without I/O."""

from __future__ import annotations

import time

import pytest

from jacameno.auth.passwords import Passwords
from jacameno.auth.tokens import AccessTokens, InvalidToken

SECRET = "s" * 64


def test_an_access_token_carries_its_user_and_expires() -> None:
    tokens = AccessTokens(SECRET, ttl_seconds=60, leeway=0)
    claims = tokens.verify(tokens.issue("user-1"))
    assert claims.user_id == "user-1"
    assert claims.expires_at - claims.issued_at == 60
    old = tokens.issue("user-1", now=time.time() - 120)
    with pytest.raises(InvalidToken):
        tokens.verify(old)


def test_a_token_from_the_future_is_refused() -> None:
    tokens = AccessTokens(SECRET, ttl_seconds=3600, leeway=0)
    with pytest.raises(InvalidToken):
        tokens.verify(tokens.issue("user-1", now=time.time() + 600))


def test_a_token_signed_with_another_secret_is_refused() -> None:
    mine, theirs = AccessTokens(SECRET), AccessTokens("t" * 64)
    with pytest.raises(InvalidToken):
        mine.verify(theirs.issue("user-1"))


async def test_passwords_are_argon2id_and_verify() -> None:
    passwords = Passwords(time_cost=1, memory_kib=1024, parallelism=1)
    stored = await passwords.hash("a long password")
    assert stored.startswith("$argon2id$")
    assert await passwords.verify(stored, "a long password")
    assert not await passwords.verify(stored, "another password")
    assert not await passwords.verify(None, "a long password")
    assert not await passwords.verify("not a hash", "a long password")
