"""Named rollout policies: waves, gate, approval, webhook and windows under one name,
picked at submit (``--policy cautious-ota``) instead of spelled out each time.

The built-in ones are below; ``FLEETBATCH_POLICIES`` (``config.Settings.policies``)
adds policies and may replace a built-in one. A pipeline's plan may name the policy
a new batch gets when its submit names none and gives no rollout option
(``BatchPlan.policy``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from fleetbatch.domain.names import unknown_name
from fleetbatch.errors import UnknownPolicyError


@dataclass(frozen=True)
class Policy:
    """A rollout's options under a name; a submit's own options override them."""

    name: str
    waves: str | None = None
    gate_failures: str | None = None
    gate_min_items: int | None = None
    approve_waves: bool = False
    on_gate_failure: str | None = None
    webhook_url: str | None = None
    windows: tuple[str, ...] = field(default_factory=tuple)
    on_end: str | None = None
    """What the batch does at a submit's end time: ``pause`` or ``cancel``."""


BUILT_IN_POLICIES: dict[str, Policy] = {
    p.name: p
    for p in (
        # An effect a retry cannot undo (a firmware update): a tiny first wave,
        # a strict gate judged early, and a pause (not an abort) for a human to look.
        Policy(
            "cautious-ota",
            waves="1%,10%,100%",
            gate_failures="2%",
            gate_min_items=10,
            on_gate_failure="pause",
        ),
        Policy(
            "careful",
            waves="5%,25%,100%",
            gate_failures="5%",
            gate_min_items=20,
            on_gate_failure="pause",
        ),
        Policy("all-at-once"),
    )
}
"""The built-in policies; ``all-at-once`` opts out of a pipeline's default."""


def get_policy(name: str, policies: Mapping[str, Policy] = BUILT_IN_POLICIES) -> Policy:
    """The policy called ``name``.

    Raises:
        UnknownPolicyError: no such policy (with the unknown_name known name, when one is close).
    """
    try:
        return policies[name]
    except KeyError:
        raise UnknownPolicyError(
            unknown_name("rollout policy", name, sorted(policies), "known policies")
        ) from None
