"""Access tokens: short-lived JWTs signed with HS256 (the only algorithm accepted), carrying the
user id as subject, checked for signature, exp, iat, iss, aud and sub.

A token that passed every check is remembered with its claims (`VERIFIED_TOKENS` of them, the
least recently presented forgotten first): a client presents the same token on every request and
every socket it opens until it renews it, and its signature and fixed claims give the same answer
each time, so only its expiry is checked again. A token is remembered only by its exact text,
under the secret that verified it, and only once verified: a forged or altered token is never a
hit, and a flood of bad tokens evicts nothing."""

from __future__ import annotations

import time
import uuid
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

import jwt

ISSUER = "jacameno"
AUDIENCE = "jacameno-api"
ALGORITHM = "HS256"
# Verified tokens remembered (about 400 bytes each with their claims).
VERIFIED_TOKENS = 4096


class InvalidToken(Exception):
    """The token is malformed, forged, expired or not meant for us."""


@dataclass(frozen=True, slots=True)
class AccessClaims:
    user_id: str
    issued_at: int
    expires_at: int
    token_id: str


class AccessTokens:
    def __init__(
        self,
        secret: str,
        ttl_seconds: int = 900,
        *,
        leeway: float = 5.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if len(secret) < 16:
            raise ValueError("the JWT secret is too short")
        self._secret = secret
        self.ttl_seconds = ttl_seconds
        self._leeway = leeway
        self._clock = clock  # what a remembered token's expiry is checked against
        self._verified: OrderedDict[str, AccessClaims] = OrderedDict()

    def issue(self, user_id: str, *, now: float | None = None) -> str:
        issued = int(time.time() if now is None else now)
        claims = {
            "iss": ISSUER,
            "aud": AUDIENCE,
            "sub": user_id,
            "iat": issued,
            "exp": issued + self.ttl_seconds,
            "jti": uuid.uuid4().hex,
        }
        return jwt.encode(claims, self._secret, algorithm=ALGORITHM)

    def verify(self, token: str) -> AccessClaims:
        """The claims of a valid token; InvalidToken otherwise (never anything else)."""
        verified = self._verified
        known = verified.get(token)
        if known is None:
            known = self._decode(token)
            verified[token] = known
            if len(verified) > VERIFIED_TOKENS:
                verified.popitem(last=False)
        else:
            verified.move_to_end(token)
        # As jwt.decode checks `exp`, with the same leeway.
        if known.expires_at <= self._clock() - self._leeway:
            del verified[token]
            raise InvalidToken("Signature has expired")
        return known

    def _decode(self, token: str) -> AccessClaims:
        try:
            claims = jwt.decode(
                token,
                self._secret,
                algorithms=[ALGORITHM],
                audience=AUDIENCE,
                issuer=ISSUER,
                leeway=self._leeway,
                options={"require": ["exp", "iat", "iss", "aud", "sub"], "verify_iat": True},
            )
        except jwt.PyJWTError as exc:
            raise InvalidToken(str(exc)) from exc
        subject = claims["sub"]
        if not isinstance(subject, str) or not subject:
            raise InvalidToken("bad subject")
        if claims["iat"] > time.time() + self._leeway:
            raise InvalidToken("issued in the future")
        return AccessClaims(subject, int(claims["iat"]), int(claims["exp"]), str(claims.get("jti")))
