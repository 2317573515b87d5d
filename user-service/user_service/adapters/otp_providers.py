"""Who makes and checks one-time codes. Either way user-service records each code's purpose, expiry, attempts
and single use; the provider only decides whether the digits typed are the digits sent.

- local: codes are made here, stored as an HMAC, and delivered through the SMS backend.
- smu:   the SMU OTP API makes, sends and checks the code (`POST /sendOTP {phone}`,
         `POST /verifyOTP {phone, otp}`, API key in a header).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

import requests
from requests.adapters import HTTPAdapter

from ..domain import otp
from ..domain.errors import OtpProviderUnavailable
from ..domain.otp import OtpChallenge

log = logging.getLogger("user_service.otp")


@dataclass(frozen=True)
class PreparedCode:
    code_hash: str | None   # what to store; None when the provider keeps the code
    sms_body: str | None    # what to send through the SMS backend, in the same transaction; None if nothing


class LocalOtpProvider:
    supersedes_every_purpose = False

    def __init__(self, hash_secret: str, ttl_seconds: int):
        self._secret = hash_secret
        self._ttl = ttl_seconds

    def prepare(self, user_id: str, purpose: str) -> PreparedCode:
        code = otp.generate_code()
        return PreparedCode(code_hash=otp.hash_code(self._secret, user_id, purpose, code),
                            sms_body=otp.message_body(code, purpose, self._ttl))

    def deliver(self, phone: str) -> None:
        """Nothing to do: the SMS backend took the message in the transaction that stored the code."""

    def verify(self, challenge: OtpChallenge, phone: str, code: str) -> bool:
        return challenge.matches_hash(otp.hash_code(self._secret, challenge.user_id, challenge.purpose, code))


class SmuOtpProvider:
    # The SMU API keeps one code per phone and knows nothing of purposes, so a new code must retire the user's
    # codes for every purpose: otherwise the code sent for transfer B would also pass for transfer A.
    supersedes_every_purpose = True

    def __init__(self, base_url: str, api_key: str, api_key_header: str, timeout: float):
        self._base = base_url.rstrip("/")
        self._timeout = timeout
        self._session = requests.Session()
        adapter = HTTPAdapter(pool_connections=1, pool_maxsize=16, max_retries=0)
        self._session.mount("http://", adapter)
        self._session.mount("https://", adapter)
        self._session.headers[api_key_header] = api_key

    def prepare(self, user_id: str, purpose: str) -> PreparedCode:
        return PreparedCode(code_hash=None, sms_body=None)

    def _post(self, path: str, body: dict) -> requests.Response:
        try:
            resp = self._session.post(self._base + path, json=body, timeout=self._timeout)
        except requests.RequestException as exc:
            log.warning("SMU OTP API unreachable", extra={"path": path, "error": type(exc).__name__})
            raise OtpProviderUnavailable() from exc
        # 401/403 mean our key is wrong: a configuration fault, not the user's.
        if resp.status_code >= 500 or resp.status_code in (401, 403):
            log.warning("SMU OTP API failed", extra={"path": path, "status": resp.status_code})
            raise OtpProviderUnavailable()
        return resp

    def deliver(self, phone: str) -> None:
        resp = self._post("/sendOTP", {"phone": phone})
        if resp.status_code >= 400:
            log.warning("SMU OTP API refused to send", extra={"status": resp.status_code})
            raise OtpProviderUnavailable("the OTP provider refused to send a code")

    def verify(self, challenge: OtpChallenge, phone: str, code: str) -> bool:
        resp = self._post("/verifyOTP", {"phone": phone, "otp": code})
        if resp.status_code >= 400:
            return False
        try:
            body = resp.json()
        except ValueError:
            body = None
        if isinstance(body, dict):
            for flag in ("success", "verified", "valid"):
                if flag in body and not body[flag]:
                    return False
        return True


def otp_provider(settings) -> LocalOtpProvider | SmuOtpProvider:
    if settings.otp_provider == "smu":
        return SmuOtpProvider(settings.smu_otp_base_url, settings.smu_otp_api_key, settings.smu_otp_api_key_header,
                              settings.smu_otp_timeout_seconds)
    return LocalOtpProvider(settings.otp_hash_secret, settings.otp_ttl_seconds)
