"""Access tokens and passwords, without I/O."""

from __future__ import annotations

import time

import jwt
import pytest

from jacameno.auth import tokens as tokens_module
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


def test_a_verified_token_is_remembered_until_it_expires(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    decoded: list[str] = []
    real_decode = jwt.decode

    def counting_decode(token: str, *args: object, **kwargs: object) -> object:
        decoded.append(token)
        return real_decode(token, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(jwt, "decode", counting_decode)
    later = 0.0
    tokens = AccessTokens(SECRET, ttl_seconds=60, leeway=0, clock=lambda: time.time() + later)
    token = tokens.issue("user-1")
    first = tokens.verify(token)
    assert tokens.verify(token) == first
    assert decoded == [token]  # the second time, only its expiry was checked
    later = 61
    with pytest.raises(InvalidToken, match="expired"):
        tokens.verify(token)
    later = 0
    tokens.verify(token)
    assert decoded == [token, token]  # forgotten once expired: checked again in full


def test_only_the_exact_verified_token_is_remembered(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tokens_module, "VERIFIED_TOKENS", 2)
    tokens = AccessTokens(SECRET, ttl_seconds=60)
    token = tokens.issue("user-1")
    tokens.verify(token)
    head, payload, signature = token.split(".")
    altered = f"{head}.{payload}.{signature[:-2]}{'AB' if signature[-2:] != 'AB' else 'CD'}"
    with pytest.raises(InvalidToken):
        tokens.verify(altered)
    with pytest.raises(InvalidToken):
        AccessTokens("t" * 64).verify(token)  # another secret remembers nothing of ours
    others = [tokens.issue(f"user-{n}") for n in (2, 3)]
    for other in others:
        tokens.verify(other)
    assert list(tokens._verified) == others  # the least recently presented went first


async def test_passwords_are_argon2id_and_verify() -> None:
    passwords = Passwords(time_cost=1, memory_kib=1024, parallelism=1)
    stored = await passwords.hash("a long password")
    assert stored.startswith("$argon2id$")
    assert await passwords.verify(stored, "a long password")
    assert not await passwords.verify(stored, "another password")
    assert not await passwords.verify(None, "a long password")
    assert not await passwords.verify("not a hash", "a long password")
