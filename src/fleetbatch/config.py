"""Settings, from ``FLEETBATCH_*`` environment variables and an optional env file.

The file is ``fleetbatch.env`` in the working directory, or the path in
``FLEETBATCH_ENV_FILE``. Environment variables win over the file.
"""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, Field, PrivateAttr, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from fleetbatch.activities.batcher_types import BatcherConfig
from fleetbatch.domain import parse_rate
from fleetbatch.domain.policies import BUILT_IN_POLICIES, Policy, get_policy
from fleetbatch.domain.rollout import rollout_from_options
from fleetbatch.errors import ConfigError
from fleetbatch.keys import NEW_KEY_HINT, KeyHasher, KeyRing
from fleetbatch.pipelines.vehicle.commands import COMMANDS, CommandType
from fleetbatch.store.breakers import BreakerPolicy


class CommandSettings(BaseModel):
    """Changes to a built-in command type, or a new type (then ``domain`` is required).

    ``rate`` is ``"10/s"``, ``"600/min"``, a number per second, or ``"off"``.
    """

    model_config = {"extra": "forbid"}

    domain: str | None = None
    requires_check_digit: bool | None = None
    response_timeout_seconds: float | None = Field(default=None, gt=0)
    max_attempts: int | None = Field(default=None, ge=1, le=100)
    rate: str | float | None = None
    chunk_size: int | None = Field(default=None, ge=1, le=5000)
    max_in_flight: int | None = Field(default=None, ge=1, le=1000)
    policy: str | None = None
    """The rollout policy of its new batches when a submit names none; ``"all-at-once"``
    sends them at once."""

    def apply(self, name: str, base: CommandType | None) -> CommandType:
        """The command type with these changes made to ``base``."""
        changes: dict[str, Any] = self.model_dump(exclude_unset=True, exclude={"rate"})
        if "rate" in self.model_fields_set:
            changes["rate_per_second"] = parse_rate(self.rate)
        if base is None:
            if self.domain is None:
                raise ConfigError(f"command {name!r} is new: give its domain")
            base = CommandType(name, self.domain)
        return replace(base, **changes)


class PolicySettings(BaseModel):
    """A named rollout policy (``domain.policies.Policy``): what ``--policy NAME`` gives
    a new batch; a submit's own options override its fields."""

    model_config = {"extra": "forbid"}

    waves: str | None = None
    gate_failures: str | None = None
    gate_min_items: int | None = Field(default=None, ge=0)
    approve_waves: bool = False
    on_gate_failure: Literal["pause", "abort"] | None = None
    webhook_url: str | None = None
    windows: list[str] = Field(default_factory=list)
    on_end: Literal["pause", "cancel"] | None = None

    def policy(self, name: str) -> Policy:
        fields = self.model_dump(exclude={"windows"})
        return Policy(name, windows=tuple(self.windows), **fields)


_PROFILE_FIELDS = frozenset(
    {
        "temporal_address",
        "temporal_namespace",
        "temporal_tls",
        "temporal_tls_ca",
        "temporal_tls_cert",
        "temporal_tls_key",
        "temporal_api_key",
    }
)
"""The settings a Temporal env-config profile replaces."""


class Settings(BaseSettings):
    """Everything fleetbatch needs to know about where things live."""

    model_config = SettingsConfigDict(
        env_prefix="FLEETBATCH_",
        env_file=os.environ.get("FLEETBATCH_ENV_FILE", "fleetbatch.env"),
        extra="ignore",
    )

    data_dir: Path = Path(".fleetbatch")
    database_url: str | None = Field(
        default=None,
        description="SQLAlchemy URL; sqlite file in the data dir when unset. "
        "postgresql://… URLs are used with asyncpg.",
    )

    # Temporal. With no address (and no profile), fleetbatch runs the embedded dev server.
    temporal_address: str | None = None
    temporal_namespace: str = "default"
    temporal_task_queue: str = "fleetbatch"
    temporal_tls: bool = Field(
        default=False,
        description="TLS with the system's trusted CAs; implied by a CA, a client "
        "certificate or an API key",
    )
    temporal_tls_ca: Path | None = Field(
        default=None, description="PEM file of the CA that signed the server's certificate"
    )
    temporal_tls_cert: Path | None = Field(
        default=None, description="PEM file of the client certificate (mTLS); with the key"
    )
    temporal_tls_key: Path | None = Field(
        default=None, description="PEM file of the client certificate's private key"
    )
    temporal_api_key: str | None = Field(
        default=None,
        description="sent as 'authorization: Bearer <key>' (Temporal Cloud API keys); turns TLS on",
    )
    temporal_profile: str | None = Field(
        default=None,
        description="a profile of Temporal's client configuration file (TOML; the file in "
        "TEMPORAL_CONFIG_FILE, else ~/.config/temporalio/temporal.toml, with the TEMPORAL_* "
        "environment overrides): address, namespace, TLS, API key and gRPC metadata come "
        "from it, instead of the temporal_address / namespace / tls / api_key settings",
    )
    temporal_ui_url: str | None = None
    _temporal_profile_config: dict[str, Any] | None = PrivateAttr(default=None)

    # The bus: in-process (one process, nothing kept) or NATS JetStream.
    bus: str = Field(
        default="memory",
        description="'memory', or a NATS URL (nats://host:4222) for JetStream",
    )
    bus_namespace: str = Field(
        default="fleetbatch",
        pattern=r"^[A-Za-z0-9_-]+$",
        description="NATS subjects live under '<namespace>.'; streams are named after it",
    )
    bus_max_deliver: int = Field(
        default=5, ge=1, le=100, description="deliveries before a message is dead-lettered"
    )
    bus_ack_wait_seconds: float = Field(
        default=30.0, gt=0, description="when a message in a dead process's hands comes back"
    )
    bus_backoff_seconds: list[float] = Field(
        default=[1.0, 5.0, 15.0, 30.0],
        min_length=1,
        description="delays before redelivering a message whose handler failed, per delivery",
    )

    metrics_address: str | None = Field(
        default="127.0.0.1:9464",
        description="where a worker process serves Prometheus metrics; unset to turn off",
    )
    worker_health_file: Path | None = Field(
        default=None,
        description="where `fleetbatch worker` keeps its readiness and liveness (JSON: "
        "status, waiting_for, pid, updated_at); <data dir>/worker-health.json when unset",
    )

    # Embedded dev server.
    dev_server_port: int = 7233
    dev_server_ui_port: int = 8233
    dev_server_persist: bool = Field(
        default=True, description="keep the dev server's state in a file in the data dir"
    )

    commands: dict[str, CommandSettings] = Field(
        default_factory=dict,
        description="per command type changes or new types, as JSON: "
        '{"lock_doors": {"rate": "20/s", "max_attempts": 5}}',
    )

    policies: dict[str, PolicySettings] = Field(
        default_factory=dict,
        description="named rollout policies besides (or replacing) the built-in ones, as "
        'JSON: {"night-ota": {"waves": "1%,10%,100%", "gate_failures": "2%", '
        '"windows": ["01:00-05:00 Europe/Berlin"]}}',
    )

    apply_rates: bool = Field(
        default=True,
        description="set each command type's rate on the Temporal server when a worker "
        "starts (a rate set with `fleetbatch rate set` is kept)",
    )
    breaker_failure_share: float = Field(default=0.5, gt=0, le=1)
    breaker_min_calls: int = Field(default=20, ge=1)
    breaker_window_seconds: float = Field(default=60.0, gt=0)
    breaker_cooldown_seconds: float = Field(default=30.0, gt=0)

    # Batch defaults.
    chunk_size: int = Field(default=100, ge=1, le=5000)
    max_in_flight: int = Field(default=20, ge=1, le=1000)
    idle_close_after_seconds: float = Field(default=30.0, ge=0)
    max_history_events: int = Field(
        default=2000,
        ge=100,
        description="a batch workflow run continues-as-new past this many history events",
    )
    response_timeout_seconds: float | None = Field(
        default=None,
        gt=0,
        description="overrides every command type's response timeout (tests, demos)",
    )
    search_keys_max: int = Field(
        default=100,
        ge=0,
        description="most item keys put in a chunk's search attribute (Temporal's default "
        "limit of 2 KB per value holds about 100 VINs)",
    )

    # HTTP API and web UI.
    environment: Literal["development", "production"] = Field(
        default="development",
        description="outside development the API refuses to start without tokens",
    )
    api_host: str = "127.0.0.1"
    api_port: int = Field(default=8000, ge=0, le=65535)
    webhook_secret: SecretStr | None = Field(
        default=None,
        description="signs every webhook notice (HMAC-SHA256 of the body); none: none sent",
    )
    api_viewer_tokens: list[SecretStr] = Field(
        default_factory=list, description='bearer tokens that may read, as JSON: ["t1", "t2"]'
    )
    api_operator_tokens: list[SecretStr] = Field(
        default_factory=list, description="bearer tokens that may also upload and steer batches"
    )
    api_max_upload_bytes: int = Field(
        default=256 * 1024 * 1024, ge=1, description="largest request body an upload may have"
    )
    api_max_body_bytes: int = Field(
        default=64 * 1024,
        ge=1,
        description="largest request body of every other route (JSON bodies, the login form)",
    )
    api_session_seconds: float = Field(
        default=12 * 3600, gt=0, description="how long a web UI login lasts"
    )
    api_events_per_token: int = Field(
        default=10, ge=1, description="live event streams one token may hold open at once"
    )
    api_events_total: int = Field(
        default=200, ge=1, description="live event streams the API holds open at once"
    )

    # Protecting item keys (VINs) outside the store: docs/security.md.
    codec_keys: SecretStr | None = Field(
        default=None,
        description="payload encryption keys, 'id1:base64key,id2:base64key' (32 random "
        "bytes each); set, every client and worker encrypts what it sends to Temporal "
        "(required in production)",
    )
    codec_active_key: str | None = Field(
        default=None,
        description="the id of the key that encrypts new payloads (the others still "
        "decrypt); may be left out with a single key",
    )
    codec_compress: bool = Field(
        default=True, description="zlib-compress payloads of 256 bytes and more before encrypting"
    )
    codec_cors_origins: list[str] = Field(
        default_factory=list,
        description="Temporal Web UI origins that may call the codec server, as JSON: "
        '["https://temporal.example"]; the Temporal Web UI\'s own origin when empty',
    )
    key_hash_secret: SecretStr | None = Field(
        default=None,
        description="HMAC secret of the keyed hashes that stand for item keys in search "
        "attributes and production logs (required in production)",
    )
    log_plain_keys: bool = Field(
        default=True,
        description="development only: log item keys (VINs) as they are; production "
        "always names items by id and keyed hash",
    )

    # The write batcher (per-item chunks record their outcomes through it).
    write_shards: int = Field(
        default=0,
        ge=0,
        le=64,
        description="per-item chunks (chunk size 1) record outcomes through this many "
        "sharded write batcher workflows; 0 writes each directly",
    )
    write_max_batch: int = Field(default=100, ge=1, le=5000)
    write_max_wait_seconds: float = Field(default=2.0, gt=0)
    write_dedup_window: int = Field(default=5000, ge=0)
    write_requests_per_run: int = Field(
        default=1000, ge=10, description="a batcher continues-as-new after this many requests"
    )
    write_ack_timeout_seconds: float = Field(
        default=120.0, gt=0, description="a write not acknowledged by then fails its items"
    )

    # Simulators (the embedded defaults for the domain and consent services).
    sim_latency_ms: float = Field(default=50.0, ge=0)
    sim_latency_jitter_ms: float = Field(default=30.0, ge=0)
    sim_failure_rate: float = Field(default=0.02, ge=0, le=1)
    sim_timeout_rate: float = Field(default=0.01, ge=0, le=1)
    sim_no_consent_rate: float = Field(default=0.03, ge=0, le=1)
    sim_seed: int | None = None
    sim_journal: Path | None = Field(
        default=None,
        description="the domain simulator keeps every execution here (JSON lines) and "
        "reads it back on start: deduplication across restarts, and `fleetbatch audit`",
    )
    sim_log_file: Path | None = Field(
        default=None,
        description="the domain simulator appends each delivery here "
        "(unix time, batch id, command id): how benchmarks see the achieved rate",
    )

    # The enrichment pipeline.
    enrich_url: str | None = Field(
        default=None,
        description="the enrichment service's base URL; unset, `dev` and a worker with "
        "the in-process bus run the enrichment simulator on a free local port",
    )
    enrich_timeout_seconds: float = Field(default=5.0, gt=0)
    enrich_retry_initial_seconds: float = Field(
        default=1.0, gt=0, description="first wait between attempts (then x2, at most 30 s)"
    )
    enrich_cache_ttl_seconds: float = Field(default=300.0, ge=0)
    enrich_heartbeat_timeout_seconds: float = Field(
        default=15.0, gt=0, description="a chunk's activity that stops heartbeating is retried"
    )
    enrich_sim_failure_rate: float = Field(default=0.10, ge=0, le=1)
    enrich_sim_rate_limit_rate: float = Field(default=0.0, ge=0, le=1)
    enrich_sim_timeout_rate: float = Field(default=0.0, ge=0, le=1)
    enrich_sim_latency_ms: float = Field(default=5.0, ge=0)

    @model_validator(mode="after")
    def _check(self) -> Settings:
        if (self.temporal_tls_cert is None) != (self.temporal_tls_key is None):
            raise ConfigError("temporal_tls_cert and temporal_tls_key must be set together")
        if self.temporal_profile is not None:
            self._load_temporal_profile(self.temporal_profile)
        if self.bus != "memory" and not self.bus.startswith(("nats://", "tls://")):
            raise ConfigError(f"bus must be 'memory' or a nats:// URL, not {self.bus!r}")
        self.command_types  # noqa: B018 - a bad rate or a new type without a domain fails here
        self._check_policies()
        self.codec_key_ring  # noqa: B018 - so does a malformed key ring
        self.key_hasher  # noqa: B018 - and a short hash secret
        return self

    def _load_temporal_profile(self, name: str) -> None:
        """Take the connection from profile ``name`` of Temporal's env-config."""
        both = sorted(_PROFILE_FIELDS & self.model_fields_set)
        if both:
            settings = ", ".join(f"FLEETBATCH_{field.upper()}" for field in both)
            raise ConfigError(
                f"temporal_profile {name!r} and {settings} contradict each other: the "
                "profile holds the connection; set it there (or unset the profile)"
            )
        from temporalio.envconfig import ClientConfigProfile

        where = os.environ.get("TEMPORAL_CONFIG_FILE") or "~/.config/temporalio/temporal.toml"
        try:
            config = dict(ClientConfigProfile.load(name).to_client_connect_config())
        except Exception as exc:  # the SDK's envconfig ConfigError, an OSError, bad TOML
            raise ConfigError(f"Temporal profile {name!r} (in {where}): {exc}") from None
        address = str(config.pop("target_host", "") or "")
        if not address:
            raise ConfigError(
                f"Temporal profile {name!r} (in {where}) has no address: set "
                "profile.<name>.address in the file, or TEMPORAL_ADDRESS"
            )
        self.temporal_address = address
        self.temporal_namespace = str(config.pop("namespace", "") or "default")
        self._temporal_profile_config = config

    @property
    def temporal_connect_options(self) -> dict[str, Any] | None:
        """With a profile: the TLS, API key and gRPC metadata it gives
        ``Client.connect`` (its address and namespace are in ``temporal_address`` and
        ``temporal_namespace``); None without one."""
        return self._temporal_profile_config

    @property
    def codec_key_ring(self) -> KeyRing | None:
        """The payload keys, when encryption is configured."""
        if self.codec_keys is None or not self.codec_keys.get_secret_value().strip():
            if self.codec_active_key:
                raise ConfigError(
                    "FLEETBATCH_CODEC_ACTIVE_KEY is set without FLEETBATCH_CODEC_KEYS"
                )
            return None
        return KeyRing.parse(self.codec_keys.get_secret_value(), self.codec_active_key or None)

    @property
    def key_hasher(self) -> KeyHasher | None:
        """The keyed hash of item keys, when its secret is configured."""
        if self.key_hash_secret is None or not self.key_hash_secret.get_secret_value():
            return None
        return KeyHasher(self.key_hash_secret.get_secret_value().encode())

    @property
    def plain_keys_in_logs(self) -> bool:
        """Whether log lines may carry item keys as they are (development only)."""
        return self.environment == "development" and self.log_plain_keys

    def check_protection(self) -> None:
        """Refuse production without payload encryption and hashed item keys.

        Raises:
            ConfigError: in production, FLEETBATCH_CODEC_KEYS or
                FLEETBATCH_KEY_HASH_SECRET is missing.
        """
        if self.environment == "development":
            return
        missing = [
            name
            for name, value in (
                (
                    "FLEETBATCH_CODEC_KEYS (payload encryption keys, id:base64key)",
                    self.codec_key_ring,
                ),
                ("FLEETBATCH_KEY_HASH_SECRET (the item keys' HMAC secret)", self.key_hasher),
            )
            if value is None
        ]
        if missing:
            raise ConfigError(
                f"{self.environment} keeps vehicle identifiers out of Temporal, but "
                f"{' and '.join(missing)} {'is' if len(missing) == 1 else 'are'} not set "
                f"({NEW_KEY_HINT}); see docs/security.md"
            )

    @property
    def effective_codec_cors_origins(self) -> list[str]:
        """The origins the codec server answers cross-origin: configured, or the
        Temporal Web UI's."""
        if self.codec_cors_origins:
            return [o.rstrip("/") for o in self.codec_cors_origins]
        web = self.temporal_web_url
        if not web:
            return []
        parts = urlsplit(web)
        return [f"{parts.scheme}://{parts.netloc}"]

    @property
    def ui_codec_endpoint(self) -> str:
        """Where the API serves the codec, as the embedded Temporal UI calls it."""
        host = "127.0.0.1" if self.api_host in ("0.0.0.0", "::", "") else self.api_host
        return f"http://{host}:{self.api_port}/codec"

    @property
    def command_types(self) -> dict[str, CommandType]:
        """The built-in command types with the configured changes and additions."""
        types = dict(COMMANDS)
        for name, change in self.commands.items():
            types[name] = change.apply(name, types.get(name))
        return types

    @property
    def rollout_policies(self) -> dict[str, Policy]:
        """The built-in rollout policies with the configured ones (which win)."""
        policies = dict(BUILT_IN_POLICIES)
        for name, configured in self.policies.items():
            policies[name] = configured.policy(name)
        return policies

    def _check_policies(self) -> None:
        """Every policy reads as a rollout, and every command type's policy exists."""
        policies = self.rollout_policies
        for name, policy in policies.items():
            try:
                rollout_from_options(None, policy=policy)
            except ConfigError as exc:
                raise ConfigError(f"rollout policy {name!r}: {exc}") from None
        for kind in self.command_types.values():
            if kind.policy is not None:
                try:
                    get_policy(kind.policy, policies)
                except ConfigError as exc:
                    raise ConfigError(f"command {kind.name!r}: {exc}") from None

    @property
    def breaker_policy(self) -> BreakerPolicy:
        """The circuit breakers' thresholds, the same for every command type."""
        return BreakerPolicy(
            failure_share=self.breaker_failure_share,
            min_calls=self.breaker_min_calls,
            window_seconds=self.breaker_window_seconds,
            cooldown_seconds=self.breaker_cooldown_seconds,
        )

    @property
    def nats(self) -> bool:
        """Whether the bus is NATS JetStream (else the in-process bus)."""
        return self.bus != "memory"

    @property
    def batcher_config(self) -> BatcherConfig:
        """How the write batchers this worker starts flush and hand over."""
        return BatcherConfig(
            max_batch=self.write_max_batch,
            max_wait_seconds=self.write_max_wait_seconds,
            dedup_window=self.write_dedup_window,
            max_requests_per_run=self.write_requests_per_run,
        )

    @property
    def embedded_temporal(self) -> bool:
        """Whether fleetbatch runs its own dev server instead of using a cluster."""
        return self.temporal_address is None

    @property
    def temporal_web_url(self) -> str | None:
        """The Temporal Web UI: configured, or the embedded dev server's."""
        if self.temporal_ui_url or not self.embedded_temporal:
            return self.temporal_ui_url
        return f"http://127.0.0.1:{self.dev_server_ui_port}"

    @property
    def effective_temporal_address(self) -> str:
        """The address clients connect to."""
        return self.temporal_address or f"127.0.0.1:{self.dev_server_port}"

    @property
    def effective_database_url(self) -> str:
        """The database URL, defaulting to a SQLite file in the data dir."""
        return self.database_url or f"sqlite:///{self.data_dir.resolve() / 'fleetbatch.db'}"

    @property
    def effective_worker_health_file(self) -> Path:
        """The worker's health file, defaulting to ``worker-health.json`` in the data dir."""
        return self.worker_health_file or self.data_dir / "worker-health.json"
