"""Settings, from ``FLEETBATCH_*`` environment variables and an optional env file.

The file is ``fleetbatch.env`` in the working directory, or the path in
``FLEETBATCH_ENV_FILE``. Environment variables win over the file.
"""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from fleetbatch.errors import ConfigError


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

    # Temporal. With no address, fleetbatch runs the embedded dev server.
    temporal_address: str | None = None
    temporal_namespace: str = "default"
    temporal_task_queue: str = "fleetbatch"
    temporal_tls: bool = False
    temporal_tls_ca: Path | None = None
    temporal_tls_cert: Path | None = None
    temporal_tls_key: Path | None = None
    temporal_api_key: str | None = None
    temporal_ui_url: str | None = None

    metrics_address: str | None = Field(
        default="127.0.0.1:9464",
        description="where a worker process serves Prometheus metrics; unset to turn off",
    )

    # Embedded dev server.
    dev_server_port: int = 7233
    dev_server_ui_port: int = 8233
    dev_server_persist: bool = Field(
        default=True, description="keep the dev server's state in a file in the data dir"
    )

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
    search_vins_max: int = Field(
        default=100,
        ge=0,
        description="most VINs put in a chunk's search attribute (Temporal's default "
        "limit of 2 KB per value holds about 100)",
    )

    # Simulators (the embedded defaults for the domain and consent services).
    sim_latency_ms: float = Field(default=50.0, ge=0)
    sim_latency_jitter_ms: float = Field(default=30.0, ge=0)
    sim_failure_rate: float = Field(default=0.02, ge=0, le=1)
    sim_timeout_rate: float = Field(default=0.01, ge=0, le=1)
    sim_no_consent_rate: float = Field(default=0.03, ge=0, le=1)
    sim_seed: int | None = None

    @model_validator(mode="after")
    def _check(self) -> Settings:
        if (self.temporal_tls_cert is None) != (self.temporal_tls_key is None):
            raise ConfigError("temporal_tls_cert and temporal_tls_key must be set together")
        return self

    @property
    def embedded_temporal(self) -> bool:
        """Whether fleetbatch runs its own dev server instead of using a cluster."""
        return self.temporal_address is None

    @property
    def effective_temporal_address(self) -> str:
        """The address clients connect to."""
        return self.temporal_address or f"127.0.0.1:{self.dev_server_port}"

    @property
    def effective_database_url(self) -> str:
        """The database URL, defaulting to a SQLite file in the data dir."""
        return self.database_url or f"sqlite:///{self.data_dir.resolve() / 'fleetbatch.db'}"
