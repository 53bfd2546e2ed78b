"""Verified tokens are remembered, but only within their own times: an expired token is
refused even after it was accepted before, and a token never accepted is not kept."""

from __future__ import annotations

import datetime as dt
import time

import jwt
import pytest

from api import auth
from api.auth import Authenticator, InvalidToken, make_token
from api.settings import Settings
from domain.commands import Actor

SECRET = "unit-test-secret-" + "x" * 40


def _authenticator() -> Authenticator:
    return Authenticator(Settings(jwt_secret=SECRET))


def test_a_verified_token_is_accepted_again_without_a_new_signature_check(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    authenticator = _authenticator()
    token = make_token(SECRET, "c-1", "customer", dt.timedelta(minutes=5))
    assert authenticator.decode(token) == Actor("c-1", "customer")

    def no_signature_check(*args: object, **kwargs: object) -> None:
        raise AssertionError("verified again")

    monkeypatch.setattr(jwt, "decode", no_signature_check)
    assert authenticator.decode(token) == Actor("c-1", "customer")


def test_a_remembered_token_still_expires() -> None:
    authenticator = _authenticator()
    token = make_token(SECRET, "c-1", "customer", dt.timedelta(seconds=2))
    assert authenticator.decode(token).id == "c-1"  # remembered now
    expires = jwt.decode(token, options={"verify_signature": False})["exp"]
    time.sleep(max(expires - time.time(), 0) + 0.05)
    with pytest.raises(InvalidToken, match="expired"):
        authenticator.decode(token)


def test_a_refused_token_is_not_remembered() -> None:
    authenticator = _authenticator()
    start = dt.datetime.now(dt.UTC) + dt.timedelta(minutes=5)
    token = make_token(SECRET, "c-1", "customer", dt.timedelta(minutes=10), nbf=start)
    for _ in range(2):
        with pytest.raises(InvalidToken, match="not valid yet"):
            authenticator.decode(token)
    forged = make_token("another-secret-" + "y" * 40, "c-1", "staff", dt.timedelta(minutes=5))
    for _ in range(2):
        with pytest.raises(InvalidToken):
            authenticator.decode(forged)


def test_the_memory_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(auth, "VERIFIED_MAX", 3)
    authenticator = _authenticator()
    tokens = [make_token(SECRET, f"c-{n}", "customer", dt.timedelta(minutes=5)) for n in range(10)]
    for token in tokens:
        authenticator.decode(token)
    assert len(authenticator._verified) == 3
    assert all(authenticator.decode(token).id == f"c-{n}" for n, token in enumerate(tokens))
