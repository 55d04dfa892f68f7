"""The enrichment pipeline's row rules: a user id, a valid email and a country.

Duplicate user ids are found by the store (the unique key on batch and key).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator

from fleetbatch.intake import Accepted, BadRow, RawRow, Rejection

MAX_USER_ID = 200
# Deliberately plain: one @, a dot in the domain, no spaces. Full RFC 5322 accepts
# addresses no enrichment service would.
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s.]+")
_COUNTRY = re.compile(r"[A-Za-z]{2}")


def validate_users(rows: Iterable[RawRow | BadRow]) -> Iterator[Accepted | Rejection]:
    """Check each row; user ids come out stripped, countries upper-cased."""
    for row in rows:
        if isinstance(row, BadRow):
            yield Rejection(row.line, row.value, row.reason)
            continue
        user_id = str(row.key).strip()
        email = str(row.fields.get("email") or "").strip()
        country = str(row.fields.get("country") or "").strip()
        problem = _problem(user_id, email, country)
        if problem is not None:
            yield Rejection(row.line, (user_id or email)[:100], problem)
            continue
        yield Accepted(row.line, user_id, {"email": email, "country": country.upper()})


def _problem(user_id: str, email: str, country: str) -> str | None:
    if not user_id:
        return "missing user_id"
    if len(user_id) > MAX_USER_ID:
        return f"user_id longer than {MAX_USER_ID} characters"
    if not email:
        return "missing email"
    if not _EMAIL.fullmatch(email):
        return f"invalid email {email[:60]!r}"
    if not _COUNTRY.fullmatch(country):
        return f"invalid country {country[:20]!r}: expected a two-letter ISO 3166 code"
    return None
