from pathlib import Path
from typing import Annotated, Literal

from pydantic import AfterValidator, Field, model_validator

from trcommon.ratelimit import RateLimitConfig, storage_supported, trusted_networks, valid_limits
from trcommon.settings import DEV_QR_SIGNING_KEY, CommonSettings

# A rate limit in the limits notation: `600/minute`, `16/5 minutes`, several joined with `;` (trcommon.ratelimit).
RateLimit = Annotated[str, AfterValidator(valid_limits)]

# The repository root here, /app in the image: both keep the built pages in build/static beneath it.
ROOT = Path(__file__).resolve().parents[2]


class OrchestratorSettings(CommonSettings):
    service_name: str = "orchestrator-service"
    port: int = 8000
    user_service_url: str = "http://127.0.0.1:8001"
    order_service_url: str = "http://127.0.0.1:8002"
    event_service_url: str = "http://127.0.0.1:8003"
    inventory_grpc_target: str = "127.0.0.1:50051"
    amqp_url: str = "amqp://guest:guest@127.0.0.1:5672/%2F"
    # Seconds a reserved seat stays held; the hold message's TTL and the seat's held_until both follow it.
    hold_ttl_seconds: int = 300
    # Gate codes (docs/design.md): each lives qr_ttl_seconds from its `iat`, give or take qr_clock_skew_seconds.
    # QR_SIGNING_KEY is the active Ed25519 private key (base64 of its 32 raw bytes), published under QR_KEY_ID;
    # QR_PUBLIC_KEYS (a JWKS JSON document) lists retired public keys whose codes are still accepted.
    qr_ttl_seconds: int = Field(30, ge=1)
    qr_clock_skew_seconds: int = Field(5, ge=0)
    qr_signing_key: str = DEV_QR_SIGNING_KEY
    qr_key_id: str = Field("dev-qr-1", min_length=1, max_length=64)
    qr_public_keys: str = ""
    # Threads of /verify's fan-out to inventory-, order- and event-service.
    verify_pool_size: int = Field(16, ge=2)
    # Fan-to-fan transfers (docs/transfers.md): how long a transfer waits for both codes; the most a seller may ask
    # ("face": the seat's price; "none": no cap); how long the seller's proceeds stay pending and disputable.
    transfer_ttl_seconds: int = Field(900, ge=1)
    transfer_price_cap: Literal["face", "none"] = "face"
    transfer_dispute_window_seconds: int = Field(7 * 24 * 3600, ge=0)
    # A fan may refund a CONFIRMED order until this long before its event starts (admins: any time).
    refund_cutoff_seconds: int = Field(24 * 3600, ge=0)
    # Recovery pass (orchestrator-worker): how often, and how long a charging saga may sit still before the
    # pass drives it to an end. Must exceed internal_timeout_seconds so an in-flight call is never overtaken.
    recovery_interval_seconds: float = 1.0
    recovery_grace_seconds: float = 10.0
    # Stale records of each kind a pass takes; a full batch that went through is followed at once by the next pass
    # (after a burst of expiries the worker does not wait a second per batch).
    recovery_batch: int = Field(100, ge=1, le=1000)
    # After held_until no debit is accepted; this margin covers a debit transaction already under way.
    debit_fence_seconds: float = 2.0
    # The bounds of one top-up, which user-service enforces (the same variables); here they only state them in
    # /openapi.json.
    topup_min_amount: int = Field(100, ge=1)
    topup_max_amount: int = Field(1_000_000, ge=1)
    # How long an event read from event-service (its hall, name) is reused for seat maps and gate scans; 0: never.
    event_cache_seconds: float = Field(10.0, ge=0)
    # How old a public seat map may be (one read of inventory serves every fan asking meanwhile); 0: always fresh.
    # This process's own reserve/pay/check-in/transfer drops its event's map at once.
    seat_map_cache_seconds: float = Field(0.5, ge=0)
    # Built front-end pages: the gate page is served from <static_dir>/scanner (`make static` builds it there;
    # the image builds it in its own stage).
    static_dir: Path = ROOT / "build" / "static"
    # orchestrator-worker touches this file after every pass (a health check reads its age); unset: no file.
    worker_heartbeat_file: str | None = None
    # Rate limits of the public API (trcommon.ratelimit; README, Settings). kong/kong.yml holds the same per-IP numbers.
    rate_limit_per_ip: RateLimit = "600/minute"
    rate_limit_auth_per_ip: RateLimit = "30/minute"
    rate_limit_login_failures_per_account: RateLimit = "5/minute;20/hour"
    rate_limit_holds_per_account: RateLimit = "30/hour"
    rate_limit_holds_per_ip: RateLimit = "16/5 minutes"
    # memory:// counts in this process; redis://host:6379/0 shares the budgets between every replica.
    rate_limit_storage_url: Annotated[str, AfterValidator(storage_supported)] = "memory://"
    rate_limit_key_prefix: str = "ticketremaster"
    # Client addresses or networks (comma-separated, CIDR allowed) exempt from every limit, e.g. a load generator.
    rate_limit_trusted_ips: str = ""
    # Proxies in front of this process whose X-Forwarded-For entry names the client (1 behind Kong); 0 locally,
    # where the TCP peer is the client and a forged X-Forwarded-For is ignored.
    forwarded_proxies: int = Field(0, ge=0, le=5)
    # Comma-separated saga step boundaries (e.g. `purchase:debit`, docs/sagas.md) at which this process dies as
    # if SIGKILLed, for crash tests only; refused in production, and unknown names stop the process at start-up.
    failpoints: str = ""

    @property
    def failpoint_set(self) -> frozenset[str]:
        return frozenset(f.strip() for f in self.failpoints.split(",") if f.strip())

    @property
    def rate_limits(self) -> RateLimitConfig:
        return RateLimitConfig(
            storage_url=self.rate_limit_storage_url, key_prefix=self.rate_limit_key_prefix,
            trusted_ips=self.rate_limit_trusted_ips,
            per_ip=self.rate_limit_per_ip, auth_per_ip=self.rate_limit_auth_per_ip,
            login_failures_per_account=self.rate_limit_login_failures_per_account,
            holds_per_account=self.rate_limit_holds_per_account, holds_per_ip=self.rate_limit_holds_per_ip)

    @model_validator(mode="after")
    def _trusted_ips_are_addresses(self):
        try:
            trusted_networks(self.rate_limit_trusted_ips)
        except ValueError as exc:
            raise ValueError(f"RATE_LIMIT_TRUSTED_IPS: {exc}") from None
        return self

    @model_validator(mode="after")
    def _failpoints_only_in_tests(self):
        if self.failpoint_set and self.environment == "production":
            raise ValueError("FAILPOINTS are for crash tests and cannot be set in production")
        return self
