"""Settings, read from the environment (``PROVISIO_*``) and an optional ``.env`` file."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from provisio.domain.return_urls import AllowedReturnUrl, parse_allowed

DEFAULT_DB_PATH = Path("var") / "provisio.db"
# Without an SMTP server, e-mails are written here as .eml files (next to the default database).
DEFAULT_MAIL_DIR = Path("var") / "mail"
# 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h, 14 h, 20 h: ten attempts over about two and a half days.
DEFAULT_WEBHOOK_RETRY_SCHEDULE = "5,300,1800,7200,18000,36000,50400,72000,72000"


def parse_retry_schedule(text: str) -> tuple[float, ...]:
    """``"5,300,1800"`` → (5.0, 300.0, 1800.0); ValueError unless every item is a number of seconds ≥ 0
    (an empty schedule: no retry, the first failure disables the endpoint)."""
    items = [item.strip() for item in text.split(",") if item.strip()]
    try:
        delays = tuple(float(item) for item in items)
    except ValueError:
        raise ValueError(f"not a comma-separated list of seconds: {text!r}") from None
    if any(not (0 <= delay <= 30 * 86400) for delay in delays) or len(delays) > 50:
        raise ValueError("each retry delay must be between 0 and 2592000 seconds, at most 50 of them")
    return delays


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="PROVISIO_", env_file=".env", extra="ignore")

    database_url: str = Field(
        default=f"sqlite:///{DEFAULT_DB_PATH}",
        description="Plain SQLAlchemy URL (sqlite:///path or postgresql://user@host/db).",
    )
    base_url: str = Field(
        default="http://127.0.0.1:8000",
        description="Public URL of this server; tenant, token and authorization URLs are built from it.",
    )
    # SCIM protocol limits, advertised in /ServiceProviderConfig.
    scim_max_results: int = Field(default=200, ge=1, description="Largest page a list or search returns.")
    scim_max_request_bytes: int = Field(
        default=1_048_576, ge=1024, description="Largest accepted request body."
    )
    scim_cursor_ttl_seconds: int = Field(
        default=3600, ge=1, description="How long a pagination cursor lives."
    )
    secret_key: str = Field(
        default="",
        description="Signs sessions and cursors; a random key is made per process when empty (dev only).",
    )
    # OAuth 2.0 authorization server and console.
    oauth_access_token_ttl_seconds: int = Field(default=3600, ge=60, description="Access token lifetime.")
    oauth_refresh_token_ttl_seconds: int = Field(
        default=90 * 86400, ge=3600, description="Refresh token lifetime, renewed on every refresh (sliding)."
    )
    oauth_code_ttl_seconds: int = Field(
        default=300, ge=10, le=600, description="Authorization code lifetime."
    )
    oauth_refresh_grace_seconds: int = Field(
        default=120, ge=0, description="How long a rotated refresh token is still accepted (lost responses)."
    )
    console_session_ttl_seconds: int = Field(
        default=12 * 3600, ge=300, description="Console sign-in lifetime."
    )
    console_sign_in_max_failures: int = Field(
        default=5, ge=1, description="Failed sign-ins per e-mail address allowed in the throttle window."
    )
    console_sign_in_window_seconds: int = Field(default=900, ge=1, description="Sign-in throttle window.")
    # Sign-in links of the management API (provisio.domain.portal_links, rules in domain.return_urls).
    portal_return_urls: str = Field(
        default="",
        description="Comma-separated origins or URL prefixes a sign-in link's return_url may point at "
        "(https, or http on loopback); empty: no return_url is accepted.",
    )
    # Verified domains: where the DNS TXT check asks.
    dns_nameservers: str = Field(
        default="",
        description="Comma-separated resolver IPs for domain verification (empty: the system resolver).",
    )
    dns_port: int = Field(default=53, ge=1, le=65535, description="UDP/TCP port of those resolvers.")
    dns_timeout_seconds: float = Field(default=5.0, gt=0, description="How long a verification may wait.")
    # Per-workspace rate limit of the SCIM API (provisio.ratelimit). Microsoft Entra asks a SCIM app to
    # take 25 requests/s per tenant: 200/s is eight times that, and a burst of 400 (two seconds at the
    # full rate) absorbs an IdP opening many connections at once, so only a runaway client meets it.
    scim_rate_limit_per_second: float = Field(
        default=200.0, ge=0, description="SCIM requests per second per workspace (0 turns the limit off)."
    )
    scim_rate_limit_burst: int = Field(
        default=400, ge=1, description="SCIM requests a workspace may send at once, above the rate."
    )
    redis_url: str = Field(
        default="",
        description="redis://host:port/db shared by every server process for rate limits (empty: the "
        "database on PostgreSQL, each process's memory on SQLite).",
    )
    # HTTP request limits, enforced by the server's protocol while the request is read (provisio.http_limits).
    http_max_header_bytes: int = Field(
        default=65_536,
        ge=4096,
        le=1_048_576,
        description="Largest request head (request line and header fields): else 431.",
    )
    http_max_headers: int = Field(
        default=100, ge=16, le=1000, description="Most header fields in a request: else 431."
    )
    http_max_url_bytes: int = Field(
        default=8192, ge=1024, le=1_048_576, description="Longest request URL (path and query): else 414."
    )
    http_header_timeout_seconds: float = Field(
        default=10.0,
        gt=0,
        le=300,
        description="Time from connecting, or a request's first byte, to its complete head: else 408.",
    )
    http_body_timeout_seconds: float = Field(
        default=30.0, gt=0, le=3600, description="Longest pause in an unfinished request body: else 408."
    )
    # Failure e-mails to a workspace's admins (provisio.notify.failures).
    notify_digest_seconds: int = Field(
        default=3600,
        ge=60,
        le=7 * 86400,
        description="Digest window of failure e-mails: at most one digest per workspace per window "
        "(a workspace's admins can choose their own).",
    )
    # E-mail (provisio.notify.mail) and the outbox worker that delivers it (provisio.notify.worker).
    smtp_host: str = Field(
        default="",
        description="SMTP server for e-mail (empty: mails are logged and written to PROVISIO_MAIL_DIR).",
    )
    smtp_port: int = Field(default=587, ge=1, le=65535, description="Port of the SMTP server.")
    smtp_username: str = Field(default="", description="SMTP login (empty: no AUTH).")
    smtp_password: str = Field(default="", description="SMTP password.")
    smtp_tls: Literal["none", "starttls", "tls"] = Field(
        default="starttls",
        description="none (plain), starttls (upgrade, required) or tls (TLS from the start, often port 465)",
    )
    smtp_timeout_seconds: float = Field(
        default=30.0, gt=0, le=300, description="Longest wait for the SMTP server at any step of a send."
    )
    mail_from: str = Field(
        default="provisio <provisio@localhost>",
        description="From: of every e-mail (an address or Name <address>).",
    )
    mail_dir: str = Field(
        default=str(DEFAULT_MAIL_DIR),
        description="Folder of the .eml files written instead of sending when PROVISIO_SMTP_HOST is empty.",
    )
    outbox_worker: bool = Field(
        default=True,
        description="Run the outbox worker inside `provisio serve` (false: run `provisio worker` apart).",
    )
    outbox_poll_seconds: float = Field(
        default=5.0, gt=0, le=3600, description="How often the worker looks for due notifications."
    )
    outbox_batch_size: int = Field(default=20, ge=1, le=1000, description="Notifications claimed at once.")
    outbox_lease_seconds: float = Field(
        default=300.0,
        gt=0,
        description="How long a claimed batch is the worker's; after that another worker may take it.",
    )
    outbox_max_attempts: int = Field(
        default=10, ge=1, description="Failed attempts after which a notification is given up (dead)."
    )
    outbox_backoff_seconds: float = Field(
        default=30.0,
        ge=0,
        description="Wait after the first failure; doubled after each further one (±20 %).",
    )
    outbox_backoff_max_seconds: float = Field(
        default=3600.0, ge=0, description="Longest wait between two attempts."
    )
    outbox_heartbeat_max_age_seconds: float = Field(
        default=60.0, gt=0, description="Health: a worker whose last heartbeat is older is not alive."
    )
    outbox_max_due_age_seconds: float = Field(
        default=600.0,
        gt=0,
        description="Health: a due notification waiting longer means the worker is stuck.",
    )
    outbox_retention_days: int = Field(
        default=7,
        ge=1,
        description="Days a sent or given-up notification (its whole message) is kept before it is pruned.",
    )
    event_retention_days: int = Field(
        default=30,
        ge=1,
        description="Days a host event (GET /api/v1/events, webhooks) is kept before the worker prunes it.",
    )
    # Webhooks (provisio.domain.webhooks, provisio.notify.webhooks): Standard Webhooks deliveries of host
    # events through the outbox.
    webhook_allow_private_urls: bool = Field(
        default=False,
        description="Allow webhook endpoints on loopback and private addresses, and plain http (tests, "
        "development; never in production: the server would post to its own network).",
    )
    webhook_retry_schedule: str = Field(
        default=DEFAULT_WEBHOOK_RETRY_SCHEDULE,
        description="Seconds to wait before each retry of a failed webhook delivery, comma-separated; after "
        "the last one fails the endpoint is disabled.",
    )
    webhook_timeout_seconds: float = Field(
        default=10.0,
        gt=0,
        le=60,
        description="The longest one webhook delivery may take, connecting included.",
    )
    webhook_attempt_retention_days: int = Field(
        default=30, ge=1, description="Days a webhook delivery attempt is kept in the attempt log."
    )
    operator_email: str = Field(
        default="",
        description="Who is mailed when a deployment-wide webhook endpoint is disabled (empty: only the log "
        "and the metric say so).",
    )
    # The provisioning log (provisio.domain.provisioning_log): how long events are kept, and the pruning.
    log_retention_days: int = Field(
        default=90, ge=1, description="Days a provisioning-log event is kept before it is pruned."
    )
    log_prune_in_background: bool = Field(
        default=True,
        description="Prune the provisioning log from the server itself (off: run `provisio log-prune`).",
    )
    log_prune_interval_seconds: float = Field(
        default=3600.0, gt=0, description="Time between two background prunings of the provisioning log."
    )
    log_level: str = "INFO"
    log_json: bool = True
    # Operations endpoints (provisio.health, provisio.metrics).
    access_log: bool = Field(
        default=True, description="One structured log line per request (method, route, status, duration)."
    )
    metrics_enabled: bool = Field(default=True, description="Serve Prometheus metrics at /metrics.")
    metrics_token: str = Field(
        default="", description="When set, /metrics asks for `Authorization: Bearer <token>` (else 401)."
    )
    readyz_timeout_seconds: float = Field(
        default=2.0, gt=0, le=30, description="How long each /readyz check may take before it fails."
    )
    readyz_outbox: bool = Field(
        default=True,
        description="A dead or stuck outbox worker makes /readyz 503 (false: only reported in its JSON).",
    )

    @field_validator("portal_return_urls")
    @classmethod
    def _portal_return_urls_parse(cls, value: str) -> str:
        parse_allowed(value)  # a bad entry stops the server at start-up, saying which
        return value

    @property
    def portal_return_url_prefixes(self) -> tuple[AllowedReturnUrl, ...]:
        return parse_allowed(self.portal_return_urls)

    @field_validator("webhook_retry_schedule")
    @classmethod
    def _retry_schedule(cls, value: str) -> str:
        parse_retry_schedule(value)
        return value

    @property
    def webhook_retry_delays(self) -> tuple[float, ...]:
        return parse_retry_schedule(self.webhook_retry_schedule)

    @property
    def public_base(self) -> str:
        return self.base_url.rstrip("/")

    def tenant_url(self, workspace_key: str) -> str:
        return f"{self.public_base}/scim/v2/{workspace_key}"

    def authorization_url(self, workspace_key: str) -> str:
        return f"{self.public_base}/oauth/{workspace_key}/authorize"

    @property
    def token_url(self) -> str:
        return f"{self.public_base}/oauth/token"

    @property
    def console_url(self) -> str:
        return f"{self.public_base}/console/"

    @property
    def secure_cookies(self) -> bool:
        return self.public_base.startswith("https://")


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
