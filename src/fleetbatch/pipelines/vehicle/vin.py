"""VIN syntax and the ISO 3779 / FMVSS 115 check digit."""

from __future__ import annotations

from operator import mul

VIN_LENGTH = 17
_ALPHABET = frozenset("ABCDEFGHJKLMNPRSTUVWXYZ0123456789")  # no I, O, Q
_TRANSLITERATION = {
    **{str(d): d for d in range(10)},
    **dict(zip("ABCDEFGH", range(1, 9), strict=True)),
    **dict(zip("JKLMN", range(1, 6), strict=True)),
    "P": 7,
    "R": 9,
    **dict(zip("STUVWXYZ", range(2, 10), strict=True)),
}
_WEIGHTS = (8, 7, 6, 5, 4, 3, 2, 10, 0, 9, 8, 7, 6, 5, 4, 3, 2)


def check_digit(vin: str) -> str:
    """The check digit (position 9) that a 17-character VIN should carry.

    Raises:
        ValueError: ``vin`` is not 17 characters long.
    """
    if len(vin) != VIN_LENGTH:
        raise ValueError(f"a VIN has {VIN_LENGTH} characters, got {len(vin)}")
    # map, not a generator: every VIN of an upload passes here.
    total = sum(map(mul, map(_TRANSLITERATION.__getitem__, vin), _WEIGHTS))
    remainder = total % 11
    return "X" if remainder == 10 else str(remainder)


def vin_problem(vin: str, *, require_check_digit: bool) -> str | None:
    """Why ``vin`` is not a valid VIN, or None when it is.

    Args:
        vin: the VIN as given (already stripped and upper-cased by the caller).
        require_check_digit: whether position 9 must match the computed check digit
            (North American VINs carry it; many others do not).
    """
    if len(vin) != VIN_LENGTH:
        return f"VIN must be {VIN_LENGTH} characters, got {len(vin)}"
    if not _ALPHABET.issuperset(vin):  # no set built for a valid VIN (most of a file)
        bad = sorted(set(vin) - _ALPHABET)
        return f"VIN contains invalid characters: {''.join(bad)}"
    if require_check_digit:
        expected = check_digit(vin)
        if vin[8] != expected:
            return f"VIN check digit is {vin[8]}, expected {expected}"
    return None


_PLANTS = "ABCDEFGHJKLMNPRSTUVWXYZ0123456789"


def make_vin(serial: int, *, wmi: str = "1FB", vds: str = "TCMD7") -> str:
    """A valid VIN with a correct check digit, unique for serials below 33 million."""
    plant = _PLANTS[(serial // 1_000_000) % len(_PLANTS)]
    body = f"{wmi}{vds}0R{plant}{serial % 1_000_000:06d}"  # position 9 is a placeholder
    return body[:8] + check_digit(body) + body[9:]
