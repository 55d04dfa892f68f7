"""VIN syntax, the ISO 3779 / FMVSS 115 check digit, and the command registry."""

from __future__ import annotations

import pytest

from fleetbatch.errors import FleetbatchError, UnknownCommandError
from fleetbatch.pipelines.vehicle.commands import COMMANDS, CommandType, get_command
from fleetbatch.pipelines.vehicle.vin import VIN_LENGTH, check_digit, make_vin, vin_problem

# Real, published VINs whose position 9 is a correct check digit.
REAL_VINS = [
    "1HGCM82633A004352",  # Honda Accord, check digit 3
    "1M8GDM9AXKP042788",  # Motor Coach Industries bus, check digit X (remainder 10)
    "JH4KA7561PC008269",  # Acura Legend, check digit 1
    "5GZCZ43D13S812715",  # Saturn Vue, check digit 1
    "11111111111111111",  # the classic all-ones test VIN, check digit 1
]


def _with_digit(vin: str, digit: str) -> str:
    return vin[:8] + digit + vin[9:]


@pytest.mark.parametrize("vin", REAL_VINS)
def test_check_digit_of_real_vins(vin: str) -> None:
    assert check_digit(vin) == vin[8]


def test_check_digit_x_for_remainder_ten() -> None:
    assert check_digit("1M8GDM9AXKP042788") == "X"


def test_check_digit_ignores_position_nine() -> None:
    # Position 9 has weight 0, so whatever it holds does not change the result.
    for digit in "0123456789X":
        assert check_digit(_with_digit("1HGCM82633A004352", digit)) == "3"


@pytest.mark.parametrize("vin", REAL_VINS)
def test_real_vins_are_valid(vin: str) -> None:
    assert vin_problem(vin, require_check_digit=True) is None
    assert vin_problem(vin, require_check_digit=False) is None


@pytest.mark.parametrize(
    ("vin", "message"),
    [
        ("", "VIN must be 17 characters, got 0"),
        ("1HGCM82633A00435", "VIN must be 17 characters, got 16"),
        ("1HGCM82633A0043521", "VIN must be 17 characters, got 18"),
        ("1" * 100, "VIN must be 17 characters, got 100"),
    ],
)
def test_wrong_length(vin: str, message: str) -> None:
    assert vin_problem(vin, require_check_digit=True) == message
    assert vin_problem(vin, require_check_digit=False) == message


@pytest.mark.parametrize(
    ("vin", "message"),
    [
        ("1HGCM82633I004352", "VIN contains invalid characters: I"),
        ("1HGCM82633O004352", "VIN contains invalid characters: O"),
        ("1HGCM82633Q004352", "VIN contains invalid characters: Q"),
        # Each bad character once, sorted.
        ("QOIQOIM82633A0043", "VIN contains invalid characters: IOQ"),
        ("1HGCM-2633A00435*", "VIN contains invalid characters: *-"),
        ("1hgcm82633a004352", "VIN contains invalid characters: acghm"),
    ],
)
def test_invalid_characters(vin: str, message: str) -> None:
    assert len(vin) == VIN_LENGTH
    assert vin_problem(vin, require_check_digit=True) == message
    # Character rules hold even where the check digit is not required.
    assert vin_problem(vin, require_check_digit=False) == message


@pytest.mark.parametrize(
    ("vin", "message"),
    [
        ("1HGCM82643A004352", "VIN check digit is 4, expected 3"),
        ("1HGCM826X3A004352", "VIN check digit is X, expected 3"),
        ("1M8GDM9A0KP042788", "VIN check digit is 0, expected X"),
        ("WP0ZZZ99ZTS392124", "VIN check digit is Z, expected 8"),
    ],
)
def test_wrong_check_digit(vin: str, message: str) -> None:
    assert vin_problem(vin, require_check_digit=True) == message


@pytest.mark.parametrize(
    "vin",
    [
        "1HGCM82643A004352",  # wrong check digit
        "1M8GDM9A0KP042788",
        "WP0ZZZ99ZTS392124",  # a European VIN: no check digit at all
    ],
)
def test_check_digit_not_required(vin: str) -> None:
    assert vin_problem(vin, require_check_digit=False) is None


def test_length_is_checked_before_characters() -> None:
    assert vin_problem("IOQ", require_check_digit=True) == "VIN must be 17 characters, got 3"


def test_characters_are_checked_before_check_digit() -> None:
    # The check digit cannot be computed over characters that have no value.
    assert vin_problem("1HGCM8264IA004352", require_check_digit=True) == (
        "VIN contains invalid characters: I"
    )


@pytest.mark.parametrize(
    "serial", [0, 1, 42, 999_999, 1_000_000, 1_234_567, 20_000_000, 32_999_999]
)
def test_make_vin_is_valid(serial: int) -> None:
    vin = make_vin(serial)
    assert len(vin) == VIN_LENGTH
    assert vin_problem(vin, require_check_digit=True) is None
    assert vin.startswith("1FBTCMD")


def test_make_vin_is_deterministic() -> None:
    assert make_vin(12345) == make_vin(12345)


def test_make_vin_custom_wmi_and_vds() -> None:
    vin = make_vin(7, wmi="5YJ", vds="SA1E1")
    assert vin.startswith("5YJSA1E1")
    assert vin_problem(vin, require_check_digit=True) is None


def test_make_vin_unique() -> None:
    serials = [*range(5_000), *range(999_000, 1_001_000), *range(32_999_000, 33_000_000)]
    vins = {make_vin(s) for s in serials}
    assert len(vins) == len(serials)
    # Same serial within the million, different plant.
    assert make_vin(5) != make_vin(1_000_005) != make_vin(2_000_005)


def test_get_command_known() -> None:
    command = get_command("lock_doors")
    assert isinstance(command, CommandType)
    assert command.name == "lock_doors"
    assert command.domain == "vehicle"
    assert command.requires_check_digit is True
    assert get_command("backoffice_update").requires_check_digit is False


def test_every_registered_command_is_found_by_name() -> None:
    for name, command in COMMANDS.items():
        assert get_command(name) is command
        assert command.name == name


KNOWN = "backoffice_update, flash_lights, honk_horn, lock_doors, ota_update, unlock_doors"


@pytest.mark.parametrize(
    ("name", "hint"),
    [
        ("x", ""),
        ("", ""),
        ("self_destruct", ""),
        ("LOCK_DOORS", "; did you mean 'lock_doors'?"),
        ("lock_doors ", "; did you mean 'lock_doors'?"),
        ("lock_door", "; did you mean 'lock_doors'?"),
        ("unlok_doors", "; did you mean 'unlock_doors'?"),
        ("honk", "; did you mean 'honk_horn'?"),
        ("ota-update", "; did you mean 'ota_update'?"),
    ],
)
def test_get_command_unknown(name: str, hint: str) -> None:
    with pytest.raises(UnknownCommandError) as caught:
        get_command(name)
    assert str(caught.value) == f"unknown command {name!r}{hint} (known commands: {KNOWN})"
    assert isinstance(caught.value, FleetbatchError)
    # Not a KeyError leaking out of the registry.
    assert caught.value.__cause__ is None
    assert caught.value.__suppress_context__
