"""Helpers of the security tests: tokens of every kind (good, expired, unsigned, forged,
RS256 from a test identity provider), a tiny JWKS endpoint, and request helpers."""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import hashlib
import hmac
import json
import threading
from collections.abc import Callable, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

from api.auth import make_token
from domain.commands import Role
from tests.conftest import TEST_SECRET
from tests.e2e.client import Json

# Request helpers shared with the end-to-end tests (bearer, error_codes, JSON,
# GRAPHQL_RESPONSE, TIMEOUT) live in tests/e2e/client.py.
SHOP_ORIGIN = "https://shop.example"
EVIL_ORIGIN = "https://evil.example"

# The test identity provider (RS256): its signing key, published in a JWKS, and a key
# nobody published.
ISSUER = "https://id.shop.example/"
AUDIENCE = "shopfront-api"
KID = "shop-idp-1"
IDP_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
STRANGER_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)


@dataclasses.dataclass
class Server:
    """A running Shopfront with its own settings, on a loopback port."""

    base_url: str
    ws_url: str
    env: dict[str, str]
    stop: Callable[[], None]
    log: Path | None = None  # what the process wrote, for a separate process

    def log_text(self) -> str:
        assert self.log is not None, "an in-process server has no log file of its own"
        return self.log.read_text(errors="replace")


# -- tokens ------------------------------------------------------------------------------


def claims(sub: str, role: Role = "customer", **extra: Any) -> Json:
    """Token claims valid for an hour; ``extra`` adds or replaces (None: left out)."""
    now = dt.datetime.now(dt.UTC)
    payload: Json = {"sub": sub, "role": role, "iat": now, "exp": now + dt.timedelta(hours=1)}
    payload.update(extra)
    return {key: value for key, value in payload.items() if value is not None}


def hs256(sub: str, role: Role = "customer", *, secret: str = TEST_SECRET, **extra: Any) -> str:
    """An HS256 token signed with ``secret`` (the servers' secret by default)."""
    if not extra and secret == TEST_SECRET:
        return make_token(secret, sub, role, dt.timedelta(hours=1))
    return jwt.encode(claims(sub, role, **extra), secret, algorithm="HS256")


def rs256(
    sub: str,
    role: Role = "customer",
    *,
    key: rsa.RSAPrivateKey = IDP_KEY,
    kid: str | None = KID,
    **extra: Any,
) -> str:
    """An RS256 token as the identity provider issues them (issuer and audience set)."""
    payload = claims(sub, role, **{"iss": ISSUER, "aud": AUDIENCE, **extra})
    headers = {} if kid is None else {"kid": kid}
    return jwt.encode(payload, key, algorithm="RS256", headers=headers)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _encode_claims(payload: Mapping[str, Any]) -> bytes:
    return json.dumps(
        {k: int(v.timestamp()) if isinstance(v, dt.datetime) else v for k, v in payload.items()}
    ).encode()


def forged_hs256(payload: Mapping[str, Any], key: bytes, kid: str | None = KID) -> str:
    """An HS256 token signed with any bytes as the secret (PyJWT itself refuses to use a
    PEM public key as an HMAC secret, so this is done by hand)."""
    header: Json = {"alg": "HS256", "typ": "JWT"}
    if kid is not None:
        header["kid"] = kid
    signing_input = f"{_b64(json.dumps(header).encode())}.{_b64(_encode_claims(payload))}"
    signature = hmac.new(key, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{_b64(signature)}"


def unsigned(payload: Mapping[str, Any]) -> str:
    """An ``alg: none`` token: no signature at all."""
    header = _b64(json.dumps({"alg": "none", "typ": "JWT"}).encode())
    return f"{header}.{_b64(_encode_claims(payload))}."


def public_pem(key: rsa.RSAPrivateKey = IDP_KEY) -> bytes:
    return key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def jwks_document(key: rsa.RSAPrivateKey = IDP_KEY, kid: str = KID) -> str:
    jwk = RSAAlgorithm.to_jwk(key.public_key(), as_dict=True)
    jwk.update({"kid": kid, "use": "sig", "alg": "RS256"})
    return json.dumps({"keys": [jwk]})


# -- a JWKS endpoint on loopback -----------------------------------------------------------


class JwksEndpoint:
    """``GET /.well-known/jwks.json`` on 127.0.0.1, in a thread; counts the fetches."""

    def __init__(self, document: str) -> None:
        endpoint = self
        self.fetches = 0
        body = document.encode()

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path != "/.well-known/jwks.json":
                    self.send_error(404)
                    return
                endpoint.fetches += 1
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/.well-known/jwks.json"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


# -- HTTP ------------------------------------------------------------------------------------


def no_leak(text: str) -> None:
    """No stack trace in what a client sees."""
    assert "Traceback" not in text, text[:2000]
    assert 'File "' not in text, text[:2000]


def request_error(response: httpx.Response, status: int, code: str) -> Json:
    """A request-level error: this status, ``errors`` with this code first, no ``data``."""
    assert response.status_code == status, (response.status_code, response.text[:2000])
    no_leak(response.text)
    body: Json = response.json()
    assert "data" not in body, body
    assert body["errors"], body
    assert body["errors"][0]["extensions"]["code"] == code, body
    assert body["errors"][0]["message"], body
    return body
