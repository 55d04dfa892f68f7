"""Names an operator types: the known one closest to a mistyped one."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


def closest(name: str, known: Iterable[str]) -> str | None:
    """The known name ``name`` most likely meant (case and surrounding blanks aside),
    or None when none is close: ``closest("lock_door", COMMANDS) == "lock_doors"``."""
    by_folded = {k.lower(): k for k in known}
    found = difflib.get_close_matches(name.strip().lower(), list(by_folded), n=1)
    return by_folded[found[0]] if found else None
