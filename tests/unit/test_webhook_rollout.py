"""A webhook without waves (an option, a policy's), and which breaker reports the
batch notifies: each opening once, the closing after it, whatever their order."""

from __future__ import annotations

import pytest

from fleetbatch.domain import BreakerSeen
from fleetbatch.domain.policies import Policy
from fleetbatch.domain.rollout import rollout_from_options
from fleetbatch.errors import ConfigError
from fleetbatch.workflows.breaker_notices import BreakerNotices, change

HOOK = "https://hooks.example.com/fleet"


def test_a_webhook_alone_is_a_rollout_in_one_wave() -> None:
    rollout = rollout_from_options(None, webhook_url=HOOK)
    assert rollout is not None
    assert (rollout.webhook_url, rollout.staged, rollout.scheduled) == (HOOK, False, False)
    policy = Policy("paged", webhook_url=HOOK)
    from_policy = rollout_from_options(None, policy=policy)
    assert from_policy is not None
    assert (from_policy.webhook_url, from_policy.policy, from_policy.staged) == (
        HOOK,
        "paged",
        False,
    )
    with pytest.raises(ConfigError, match="gates and approvals are for waves"):
        rollout_from_options(None, webhook_url=HOOK, approve_waves=True)
    with pytest.raises(ConfigError, match="invalid webhook 'ftp://x'"):
        rollout_from_options(None, webhook_url="ftp://x")


def test_each_opening_is_noticed_once_and_its_closing_after_it() -> None:
    noticed = BreakerNotices()
    assert change(noticed, BreakerSeen("lock_doors", "closed", 90.0)) is None
    opened = ("breaker_opened", {"breaker": "lock_doors", "opened_at": 100.0})
    assert change(noticed, BreakerSeen("lock_doors", "open", 100.0)) == opened
    # Other chunks' reports of the same opening, half-open included: nothing more.
    assert change(noticed, BreakerSeen("lock_doors", "open", 100.0)) is None
    assert change(noticed, BreakerSeen("lock_doors", "half_open", 100.0)) is None
    # A late report of the breaker closed before it opened.
    assert change(noticed, BreakerSeen("lock_doors", "closed", 95.0)) is None
    closed = ("breaker_closed", {"breaker": "lock_doors"})
    assert change(noticed, BreakerSeen("lock_doors", "closed", 130.0)) == closed
    assert change(noticed, BreakerSeen("lock_doors", "closed", 131.0)) is None
    # A late report of the opening already closed, then a new opening.
    assert change(noticed, BreakerSeen("lock_doors", "open", 100.0)) is None
    reopened = change(noticed, BreakerSeen("lock_doors", "open", 200.0))
    assert reopened == ("breaker_opened", {"breaker": "lock_doors", "opened_at": 200.0})
    assert noticed == BreakerNotices({"lock_doors": 200.0}, ["lock_doors"])
