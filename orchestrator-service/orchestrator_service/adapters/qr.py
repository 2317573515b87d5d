"""Signing and checking gate QR codes: JWS compact strings signed with Ed25519 (PyJWT's EdDSA).

Header `{"alg": "EdDSA", "kid", "typ": "TRQR"}`; claims `sid` (seat), `sub` (holder), `ver` (ticket_version),
`iat` (seconds), `jti` (random). Age is judged by domain/gate.py, not here."""
from __future__ import annotations

import base64
import binascii
import io
import json
import secrets

import jwt
import qrcode
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from jwt.algorithms import OKPAlgorithm

from ..domain.gate import QrClaims

TYP = "TRQR"
# A code is a few hundred bytes; anything much longer is not one of ours.
MAX_CODE_LENGTH = 2048


class InvalidCode(Exception):
    """Malformed, forged, signed with an unknown key, or missing a claim."""


def private_key_from_setting(value: str) -> Ed25519PrivateKey:
    try:
        raw = base64.b64decode(value, validate=True)
        return Ed25519PrivateKey.from_private_bytes(raw)
    except (binascii.Error, ValueError) as exc:
        raise ValueError("QR_SIGNING_KEY must be base64 of a 32-byte Ed25519 private key") from exc


def public_keys_from_jwks(document: str) -> dict[str, Ed25519PublicKey]:
    if not document.strip():
        return {}
    try:
        keys = json.loads(document)["keys"]
        found = {}
        for jwk in keys:
            key = OKPAlgorithm.from_jwk(jwk)
            if not isinstance(key, Ed25519PublicKey) or not jwk.get("kid"):
                raise ValueError("not an Ed25519 public key with a kid")
            found[jwk["kid"]] = key
        return found
    except (KeyError, TypeError, ValueError, jwt.exceptions.InvalidKeyError) as exc:
        raise ValueError(f"QR_PUBLIC_KEYS must be a JWKS of Ed25519 public keys with kids: {exc}") from exc


def public_jwk(kid: str, key: Ed25519PublicKey) -> dict:
    jwk = OKPAlgorithm.to_jwk(key, as_dict=True)
    return {"kty": "OKP", "crv": "Ed25519", "x": jwk["x"], "kid": kid, "alg": "EdDSA", "use": "sig"}


class QrCodec:
    def __init__(self, signing_key: str, key_id: str, public_keys: str = ""):
        self._key = private_key_from_setting(signing_key)
        self._kid = key_id
        self._public = {**public_keys_from_jwks(public_keys), key_id: self._key.public_key()}

    def sign(self, seat_id: str, holder_id: str, version: int, issued_at: int) -> str:
        claims = {"sid": seat_id, "sub": holder_id, "ver": version, "iat": issued_at, "jti": secrets.token_hex(12)}
        return jwt.encode(claims, self._key, algorithm="EdDSA", headers={"kid": self._kid, "typ": TYP})

    def read(self, code: str) -> QrClaims:
        """The claims of a code whose signature holds under one of the accepted keys; InvalidCode otherwise."""
        if len(code) > MAX_CODE_LENGTH:
            raise InvalidCode("code too long")
        try:
            header = jwt.get_unverified_header(code)
            key = self._public.get(header.get("kid")) if isinstance(header.get("kid"), str) else None
            if key is None:
                raise InvalidCode("unknown key id")
            if header.get("typ") != TYP:
                raise InvalidCode("not a ticket code")
            claims = jwt.decode(code, key, algorithms=["EdDSA"], options={
                "verify_exp": False, "verify_iat": False, "verify_nbf": False, "verify_aud": False,
                "verify_iss": False, "verify_sub": False, "verify_jti": False,
                "require": ["sid", "sub", "ver", "iat", "jti"]})
        except jwt.exceptions.PyJWTError as exc:
            raise InvalidCode(str(exc)) from None
        sid, sub, ver, iat, jti = (claims[k] for k in ("sid", "sub", "ver", "iat", "jti"))
        if not (isinstance(sid, str) and isinstance(sub, str) and isinstance(jti, str)
                and type(ver) is int and type(iat) is int):
            raise InvalidCode("claims of the wrong type")
        return QrClaims(sid, sub, ver, iat, jti)

    def jwks(self) -> dict:
        return {"keys": [public_jwk(kid, key) for kid, key in self._public.items()]}


def png(code: str) -> bytes:
    out = io.BytesIO()
    qrcode.make(code, error_correction=qrcode.constants.ERROR_CORRECT_M).save(out, format="PNG")
    return out.getvalue()
