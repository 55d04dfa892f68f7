"""Domain simulator: executes commands from the bus and answers on the bus.

It behaves like a real downstream domain: latency, a share of failures, a
share of deliveries lost (the caller sees a timeout), and deduplication by
command id — a command is executed at most once however often it is
delivered, and a repeat delivery gets the first execution's answer (sent to
that delivery's reply address).

With a journal file it keeps every execution (one JSON line, written before
the answer is sent), reads it back on start, and so deduplicates across
restarts; ``fleetbatch audit`` compares the journal with the store. A
delivery's handler returns only after its answer is published, so a durable
bus redelivers what a killed simulator had in hand.
"""

from __future__ import annotations

import asyncio
import enum
import json
import random
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TextIO

from fleetbatch.bus import (
    RESPONSES_SUBJECT,
    Bus,
    CommandMessage,
    ResponseMessage,
    Subscription,
    domain_subject,
)


class Decision(enum.Enum):
    """What the simulator does with one delivery."""

    SUCCEED = "succeed"
    FAIL = "fail"
    DROP = "drop"
    """Lose the delivery: no execution, no answer; the caller times out."""


@dataclass(frozen=True)
class DomainSimulatorConfig:
    latency_ms: float = 50.0
    latency_jitter_ms: float = 30.0
    failure_rate: float = 0.0
    timeout_rate: float = 0.0
    seed: int | None = None


Decide = Callable[[CommandMessage], Decision]


@dataclass(frozen=True, slots=True)
class Answer:
    """What the domain answered a command: kept per command id, so it stays small."""

    ok: bool
    error: str | None = None


_SUCCEEDED = Answer(True)


class DomainSimulator:
    """Listens on the command subjects of ``domains`` and answers on the response subject.

    Args:
        decide: overrides the random decision per delivery (scripted scenarios).
    """

    def __init__(
        self,
        bus: Bus,
        config: DomainSimulatorConfig | None = None,
        *,
        domains: tuple[str, ...] = ("vehicle", "backoffice"),
        decide: Decide | None = None,
        log: TextIO | None = None,
        journal: Path | None = None,
    ) -> None:
        self._bus = bus
        self._log = log
        """Where each delivery is written as ``unix time,batch id,command id``, if anywhere."""
        self._config = config or DomainSimulatorConfig()
        self._domains = domains
        self._random = random.Random(self._config.seed)
        self._decide = decide or self._random_decision
        self._subs: list[Subscription] = []
        self._journal_path = journal
        self._journal: TextIO | None = None
        self.delivered: Counter[str] = Counter()
        """Deliveries per command id, including repeats."""
        self.executed: Counter[str] = Counter()
        """Executions per command id; at most 1 each if deduplication holds."""
        self.results: dict[str, Answer] = {}
        """The answer of each executed command, repeated to later deliveries (a million
        commands cost tens of MB: successes share one ``Answer``)."""

    async def start(self) -> None:
        """Read the journal back, then subscribe to every configured domain's commands."""
        if self._journal_path is not None:
            for response in read_journal(self._journal_path):
                self.executed[response.command_id] += 1
                self.results[response.command_id] = _answer(response.ok, response.error)
            self._journal = self._journal_path.open("a", buffering=1)
        for domain in self._domains:
            self._subs.append(await self._bus.subscribe(domain_subject(domain), self._on_command))

    async def stop(self) -> None:
        """Unsubscribe; answers being sent finish first."""
        for sub in self._subs:
            await sub.close()
        self._subs.clear()
        if self._journal is not None:
            self._journal.close()
            self._journal = None

    def _random_decision(self, _message: CommandMessage) -> Decision:
        roll = self._random.random()
        if roll < self._config.timeout_rate:
            return Decision.DROP
        if roll < self._config.timeout_rate + self._config.failure_rate:
            return Decision.FAIL
        return Decision.SUCCEED

    def _latency(self) -> float:
        jitter = self._random.uniform(-1, 1) * self._config.latency_jitter_ms
        return max(0.0, self._config.latency_ms + jitter) / 1000

    async def _on_command(self, data: bytes) -> None:
        message = CommandMessage.decode(data)
        self.delivered[message.command_id] += 1
        if self._log is not None:
            self._log.write(f"{time.time():.4f},{message.batch_id},{message.command_id}\n")
        answer = self.results.get(message.command_id)
        if answer is None:
            decision = self._decide(message)
            if decision is Decision.DROP:
                return
            answer = self._execute(message, decision)
        delay = self._latency()
        if delay > 0:
            await asyncio.sleep(delay)
        # To the delivery's reply address: a command a new chunk took over answers there.
        await self._bus.publish(RESPONSES_SUBJECT, [_response(message, answer).encode()])

    def _execute(self, message: CommandMessage, decision: Decision) -> Answer:
        succeeded = decision is Decision.SUCCEED
        answer = _answer(succeeded, None if succeeded else "vehicle unreachable")
        # Journal first: an execution is never forgotten, even if the answer is lost.
        if self._journal is not None:
            record = asdict(_response(message, answer))
            self._journal.write(json.dumps(record, separators=(",", ":")) + "\n")
        self.executed[message.command_id] += 1
        self.results[message.command_id] = answer
        return answer


def _response(message: CommandMessage, answer: Answer) -> ResponseMessage:
    return ResponseMessage(
        message.command_id, message.reply_to, answer.ok, answer.error, message.vin, message.batch_id
    )


def _answer(ok: bool, error: str | None) -> Answer:
    return _SUCCEEDED if ok and error is None else Answer(ok, error)


def read_journal(path: Path) -> Iterator[ResponseMessage]:
    """Every execution a domain simulator's journal holds, in order (none if no file)."""
    if not path.exists():
        return
    with path.open() as lines:
        for line in lines:
            if line.endswith("\n"):  # a line cut by a kill was never answered
                yield ResponseMessage(**json.loads(line))
