"""Enrichment service simulator: a real HTTP server that behaves like a flaky enrichment API.

It stands in for the external user-enrichment API during development, tests and benches, so
the client's retries, timeouts and fallbacks meet real sockets, real status codes and real
headers rather than a mocked transport. Answers are deterministic per user (region from the
country, segment and score from a hash of the user id); the failures are random, in the
proportions of :class:`EnrichmentSimulatorConfig` (reproducible with ``seed``).

Endpoints:
    ``POST /enrich``: ``{"user_id", "email", "country"}`` to
        ``{"user_id", "region", "segment", "score"}``; 422 for a missing or empty field,
        503 for a simulated failure, 429 with ``Retry-After`` for a simulated rate limit.
    ``GET /stats``: calls per user id and per outcome.
    ``GET /healthz``: ``{"ok": true}``.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import random
import time
from collections import Counter
from collections.abc import Generator
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Final, Self

import uvicorn
from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError

logger = logging.getLogger(__name__)


def _codes(text: str) -> frozenset[str]:
    # Space-separated codes read (and diff) better than a list of fifty quoted strings.
    return frozenset(text.split())


# Europe (EU, EEA, UK, the Balkans and neighbours) counts as "EU": the region is a routing and
# reporting bucket, not a statement about membership.
_EU: Final = _codes(
    "AD AL AT BA BE BG BY CH CY CZ DE DK EE ES FI FO FR GB GI GR HR HU IE IS IT LI LT LU LV MC "
    "MD ME MK MT NL NO PL PT RO RS SE SI SK SM UA VA XK"
)
_NA: Final = _codes("US CA GL PM BM")
_LATAM: Final = _codes(
    "MX GT BZ SV HN NI CR PA CU DO HT JM PR TT BB BS AG DM GD KN LC VC AR BO BR CL CO EC GY "
    "PY PE SR UY VE"
)
_APAC: Final = _codes(
    "AU NZ JP KR KP CN HK MO TW MN SG MY ID PH TH VN KH LA MM BN TL IN PK BD LK NP BT MV FJ PG "
    "SB VU WS TO KI NR TV FM MH PW KZ KG TJ TM UZ AF"
)
_MEA: Final = _codes(
    "AE SA QA KW BH OM YE IQ IR IL PS JO LB SY TR EG LY TN DZ MA SD SS ET ER DJ SO KE UG TZ RW "
    "BI CD CG CM CF TD GA GQ NG NE ML BF SN GM GN GW SL LR CI GH TG BJ MR CV ST AO ZM ZW MW MZ "
    "MG MU SC KM NA BW ZA LS SZ"
)
_REGIONS: Final = (("EU", _EU), ("NA", _NA), ("LATAM", _LATAM), ("APAC", _APAC), ("MEA", _MEA))

SEGMENTS: Final = ("consumer", "smb", "enterprise")
"""Every segment the simulator answers, most common first."""

OUTCOMES: Final = ("ok", "failure", "rate_limited", "timeout", "invalid")
"""The keys of :attr:`EnrichmentSimulator.outcomes`."""


def region_for(country: str) -> str:
    """The region of an ISO 3166-1 alpha-2 country code (any case): EU, NA, LATAM, APAC, MEA.

    Unknown codes are ``"OTHER"`` rather than an error: the real API answers for any country.
    """
    code = country.strip().upper()
    for region, codes in _REGIONS:
        if code in codes:
            return region
    return "OTHER"


def segment_and_score(user_id: str) -> tuple[str, int]:
    """The segment and the score (0..100) of a user, the same for a user id on every run.

    A cryptographic digest rather than ``hash()``: Python randomises ``hash`` of strings per
    process, and a user must get the same answer from every simulator process.
    """
    digest = hashlib.sha256(user_id.encode()).digest()
    bucket = int.from_bytes(digest[:2]) % 100
    # Skewed like a real customer base: mostly consumers, few enterprises.
    segment = SEGMENTS[0] if bucket < 60 else SEGMENTS[1] if bucket < 90 else SEGMENTS[2]
    return segment, int.from_bytes(digest[2:4]) % 101


@dataclass(frozen=True)
class EnrichmentSimulatorConfig:
    """How the simulator behaves; the rates are shares of calls, drawn once per call.

    Attributes:
        latency_ms: mean latency of every answer (but a timeout), in milliseconds.
        latency_jitter_ms: the latency is uniform in ``latency_ms ± latency_jitter_ms``.
        failure_rate: share of calls answered 503.
        rate_limit_rate: share of calls answered 429 with ``Retry-After``.
        retry_after_seconds: the ``Retry-After`` of a 429 (a fraction is allowed so that tests
            stay fast, although RFC 9110 wants whole seconds).
        timeout_rate: share of calls that wait ``timeout_seconds`` before answering (200),
            long enough for a client with a shorter timeout to give up.
        timeout_seconds: how long such a call waits.
        seed: seeds the draws: the same seed gives the same outcome sequence to calls made
            one at a time. ``None`` draws differently every run.

    Raises:
        ValueError: a rate outside 0..1, rates adding up to more than 1, or a negative time.
    """

    latency_ms: float = 20
    latency_jitter_ms: float = 10
    failure_rate: float = 0.10
    rate_limit_rate: float = 0.0
    retry_after_seconds: float = 1.0
    timeout_rate: float = 0.0
    timeout_seconds: float = 30.0
    seed: int | None = None

    def __post_init__(self) -> None:
        rates = {
            "failure_rate": self.failure_rate,
            "rate_limit_rate": self.rate_limit_rate,
            "timeout_rate": self.timeout_rate,
        }
        for name, rate in rates.items():
            if not 0.0 <= rate <= 1.0:
                raise ValueError(f"{name} must be within 0..1, not {rate}")
        # One draw per call picks at most one misbehaviour, so each rate is exact only if
        # together they leave room for each other.
        if sum(rates.values()) > 1.0 + 1e-9:
            raise ValueError(
                f"failure, rate-limit and timeout rates add up to more than 1: {rates}"
            )
        times = {
            "latency_ms": self.latency_ms,
            "latency_jitter_ms": self.latency_jitter_ms,
            "retry_after_seconds": self.retry_after_seconds,
            "timeout_seconds": self.timeout_seconds,
        }
        for name, value in times.items():
            if value < 0:
                raise ValueError(f"{name} must not be negative, not {value}")


class _EnrichRequest(BaseModel):
    """The body of ``POST /enrich``; an empty field is as unusable as a missing one."""

    model_config = ConfigDict(extra="ignore")

    user_id: str = Field(min_length=1)
    email: str = Field(min_length=1)
    country: str = Field(min_length=1)


class _Server(uvicorn.Server):
    """Leaves signals to the embedding process: a simulator inside tests or a CLI must not
    take over Ctrl-C (uvicorn would install its handlers for as long as it serves)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


class EnrichmentSimulator:
    """The enrichment API simulator, served by uvicorn in a task of the running event loop.

    Use ``async with EnrichmentSimulator(config) as sim:`` (or :meth:`start` / :meth:`stop`);
    :attr:`url` is its base URL, with the port actually bound when ``port`` is 0.

    Args:
        config: how it behaves. :attr:`config` may be replaced while it runs (a scenario in
            which the service goes down or recovers); the next call uses the new one, but
            not its seed: the draws go on from the first config's.
        host: address to listen on.
        port: port to listen on; 0 picks a free one.
        log_file: if given, one NDJSON line per ``POST /enrich`` call,
            ``{"t": <unix time>, "user_id": ..., "status": <http status>}``, appended and
            flushed per line so that another process can follow it.

    Attributes:
        calls: ``POST /enrich`` calls per user id (of every outcome, a 422 included when its
            body still names a user id).
        outcomes: calls per simulated outcome, keys from :data:`OUTCOMES`, counted when the
            call arrives (a simulated timeout counts while it still waits).
    """

    def __init__(
        self,
        config: EnrichmentSimulatorConfig | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        log_file: Path | None = None,
    ) -> None:
        self.config = config or EnrichmentSimulatorConfig()
        self.host = host
        self.port = port
        self.log_file = log_file
        self.calls: Counter[str] = Counter()
        self.outcomes: Counter[str] = Counter()
        self._rng = random.Random(self.config.seed)
        self._log: IO[str] | None = None
        self._server: _Server | None = None
        self._task: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()
        self._url: str | None = None
        self.app = self._build_app()

    @property
    def url(self) -> str:
        """Base URL, e.g. ``http://127.0.0.1:54321``.

        Raises:
            RuntimeError: it is not running.
        """
        if self._url is None:
            raise RuntimeError("the enrichment simulator is not running")
        return self._url

    def _build_app(self) -> FastAPI:
        app = FastAPI(title="Enrichment service simulator", docs_url=None, redoc_url=None)

        @app.post("/enrich")
        async def enrich(request: Request) -> Response:
            return await self._enrich(await request.body())

        @app.get("/stats")
        async def stats() -> dict[str, Any]:
            return {
                "total": self.outcomes.total(),
                "calls": dict(self.calls),
                "outcomes": dict(self.outcomes),
            }

        @app.get("/healthz")
        async def healthz() -> dict[str, bool]:
            return {"ok": True}

        return app

    async def _enrich(self, body: bytes) -> Response:
        try:
            request = _EnrichRequest.model_validate_json(body)
        except ValidationError as exc:
            # Validated by hand rather than by FastAPI so that a rejected call is still
            # counted: a client that retries a 422 shows up in the stats.
            user_id = _user_id_of(body)
            if user_id is not None:
                self.calls[user_id] += 1
            self.outcomes["invalid"] += 1
            invalid = Response(exc.json(include_url=False), 422, media_type="application/json")
            return self._answer(user_id, invalid)
        user_id = request.user_id
        self.calls[user_id] += 1
        config = self.config
        draw = self._rng.random()
        # Outcomes are counted when decided, not when answered: a call waiting out a simulated
        # timeout shows in the stats while it waits.
        if draw < config.timeout_rate:
            self.outcomes["timeout"] += 1
            stopped = await self._pause(config.timeout_seconds)
            return self._answer(user_id, _stopping_response() if stopped else _success(request))
        # The jitter is drawn after the outcome and always consumes one draw, so a seed gives
        # the same outcome sequence whatever the latency settings.
        jitter = self._rng.uniform(-1, 1) * config.latency_jitter_ms
        outcome, response = self._decide(request, draw - config.timeout_rate)
        self.outcomes[outcome] += 1
        if await self._pause(max(0.0, config.latency_ms + jitter) / 1000):
            response = _stopping_response()
        return self._answer(user_id, response)

    def _decide(self, request: _EnrichRequest, draw: float) -> tuple[str, Response]:
        """The outcome of a call that is not a timeout, from its draw (0..1 - timeout_rate)."""
        config = self.config
        if draw < config.rate_limit_rate:
            return "rate_limited", JSONResponse(
                {"error": "rate limited", "retry_after_seconds": config.retry_after_seconds},
                429,
                headers={"Retry-After": f"{config.retry_after_seconds:g}"},
            )
        if draw - config.rate_limit_rate < config.failure_rate:
            return "failure", JSONResponse({"error": "simulated failure"}, 503)
        return "ok", _success(request)

    async def _pause(self, seconds: float) -> bool:
        """Wait ``seconds``, or less if the simulator stops meanwhile; whether it stops.

        A simulated timeout waits long after its client gave up: without the early wake-up,
        stopping would wait for every such call, since uvicorn lets requests finish.
        """
        if seconds <= 0:
            return self._stopping.is_set()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await self._stopping.wait()
        return self._stopping.is_set()

    def _answer(self, user_id: str | None, response: Response) -> Response:
        if self._log is not None:
            line = {"t": time.time(), "user_id": user_id, "status": response.status_code}
            # A short write per call, on the event loop: cheaper than a thread hop, and the
            # flush lets a test or an operator follow the file while it grows.
            self._log.write(json.dumps(line) + "\n")
            self._log.flush()
        return response

    def _open_log(self) -> None:
        if self.log_file is not None:
            self.log_file.parent.mkdir(parents=True, exist_ok=True)
            self._log = self.log_file.open("a", encoding="utf-8")

    def _close_log(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None

    async def start(self) -> None:
        """Start serving and wait until the port is bound.

        Raises:
            RuntimeError: it is already running, or uvicorn could not start (port in use).
        """
        if self._task is not None:
            raise RuntimeError("the enrichment simulator is already running")
        self._stopping.clear()
        self._open_log()
        config = uvicorn.Config(
            self.app,
            host=self.host,
            port=self.port,
            lifespan="off",
            log_level="warning",
            # No websockets: the import of the websockets package can warn, and tests turn
            # warnings into errors. A backstop for requests that outlive stop() too.
            ws="none",
            timeout_graceful_shutdown=2,
        )
        server = _Server(config)
        task = asyncio.create_task(_serve(server), name="enrichment-simulator")
        while not server.started:
            if task.done():
                self._close_log()
                task.result()
                raise RuntimeError(
                    f"the enrichment simulator did not start on {self.host}:{self.port} "
                    "(see uvicorn's log above)"
                )
            await asyncio.sleep(0.01)
        self._server, self._task = server, task
        bound = server.servers[0].sockets[0].getsockname()[1]
        self._url = f"http://{self.host}:{bound}"

    async def stop(self) -> None:
        """Stop serving (calls in flight answer 503 at once) and close the log; idempotent."""
        server, task = self._server, self._task
        if server is None or task is None:
            return
        self._stopping.set()
        server.should_exit = True
        try:
            await task
        finally:
            self._server = self._task = self._url = None
            self._close_log()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()


def _stopping_response() -> JSONResponse:
    # A call still waiting when the simulator stops: answered at once, as a server going down
    # would (uvicorn would otherwise wait for it, a simulated timeout for many seconds).
    return JSONResponse({"error": "simulator stopping"}, 503)


def _success(request: _EnrichRequest) -> JSONResponse:
    segment, score = segment_and_score(request.user_id)
    return JSONResponse(
        {
            "user_id": request.user_id,
            "region": region_for(request.country),
            "segment": segment,
            "score": score,
        }
    )


def _user_id_of(body: bytes) -> str | None:
    """The user id of a body that failed validation, if it still has one."""
    try:
        parsed = json.loads(body)
    except ValueError:
        return None
    user_id = parsed.get("user_id") if isinstance(parsed, dict) else None
    return user_id if isinstance(user_id, str) and user_id else None


async def _serve(server: uvicorn.Server) -> None:
    # uvicorn logs why it could not start (address in use) and calls sys.exit: start() reports
    # it instead of the whole process ending.
    with contextlib.suppress(SystemExit):
        await server.serve()


async def run_forever(
    config: EnrichmentSimulatorConfig | None = None,
    host: str = "127.0.0.1",
    port: int = 8090,
    log_file: Path | None = None,
) -> None:
    """Serve the simulator until cancelled (a CLI process: ``asyncio.run`` and Ctrl-C).

    Raises:
        RuntimeError: it could not start (port in use).
    """
    async with EnrichmentSimulator(config, host=host, port=port, log_file=log_file) as sim:
        logger.warning("enrichment simulator listening on %s", sim.url)
        await asyncio.Event().wait()
