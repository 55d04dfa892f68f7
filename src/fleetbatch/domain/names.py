"""Names an operator types: the known one closest to a mistyped one."""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Sequence


def closest(name: str, known: Iterable[str]) -> str | None:
    """The known name ``name`` most likely meant (case and surrounding blanks aside),
    or None when none is close: ``closest("enrihc", ["enrich", "other"]) == "enrich"``."""
    by_folded = {k.lower(): k for k in known}
    found = difflib.get_close_matches(name.strip().lower(), list(by_folded), n=1)
    return by_folded[found[0]] if found else None


def unknown_name(kind: str, name: str, known: Sequence[str], label: str = "known") -> str:
    """The message for a mistyped name: ``unknown pipeline 'enrihc'; did you mean
    'enrich'? (known: enrich, vehicle)``; ``known`` is listed in the order given."""
    close = closest(name, known)
    hint = f"; did you mean {close!r}?" if close else ""
    return f"unknown {kind} {name!r}{hint} ({label}: {', '.join(known)})"
