"""Exact money: decimal strings in, integer minor units plus an ISO 4217 code stored."""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal
from functools import cache

from babel.numbers import get_currency_precision, list_currencies


class MoneyError(ValueError):
    """An amount or currency that cannot be represented exactly."""


@cache
def currency_codes() -> frozenset[str]:
    """Every ISO 4217 code Babel knows."""
    return frozenset(list_currencies())


def is_currency(code: str) -> bool:
    """True for a known ISO 4217 code (upper case)."""
    return code in currency_codes()


@cache
def minor_exponent(currency: str) -> int:
    """Digits after the decimal point for a currency (JPY 0, USD 2, KWD 3)."""
    if not is_currency(currency):
        raise MoneyError(f"unknown currency {currency!r} (expected an ISO 4217 code such as USD)")
    return int(get_currency_precision(currency))


MAX_WHOLE_DIGITS = 15  # above a quadrillion no shop amount is plausible; int64 stays safe
_AMOUNT = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)")


def parse_minor(text: str, currency: str) -> int:
    """Parse a decimal string such as "12.50" into minor units of `currency`, exactly.

    More decimals than the currency has are refused unless they are zeros ("1200.00" JPY is
    1200, "12.345" USD is an error), so no amount is ever silently rounded. Only plain ASCII
    decimals are amounts: no exponents ("1e3"), digit separators ("1_200", "1,200"), other
    scripts' digits ("１２００", "²") or more than MAX_WHOLE_DIGITS whole digits.
    """
    exponent = minor_exponent(currency)
    text = text.strip()
    if not _AMOUNT.fullmatch(text):
        if text.lower().lstrip("+-") in {"nan", "inf", "infinity", "snan"}:
            raise MoneyError("is not a finite amount")
        raise MoneyError("is not a decimal amount")
    whole, _, fraction = text.lstrip("+-").partition(".")
    if len(whole.lstrip("0")) > MAX_WHOLE_DIGITS:
        raise MoneyError(f"is implausibly large (more than {MAX_WHOLE_DIGITS} digits)")
    sign = -1 if text.startswith("-") else 1
    scale: int = 10**exponent
    if len(fraction) > exponent and fraction[exponent:].strip("0"):
        raise MoneyError(f"has more decimals than {currency} allows ({exponent})")
    kept = fraction[:exponent].ljust(exponent, "0")
    return sign * (int(whole or "0") * scale + (int(kept) if exponent else 0))


@dataclass(frozen=True, slots=True)
class Money:
    """An exact amount: integer minor units of one currency."""

    minor: int
    currency: str

    @property
    def amount(self) -> Decimal:
        """The amount in major units, exactly."""
        return Decimal(self.minor).scaleb(-minor_exponent(self.currency))

    def __str__(self) -> str:
        exponent = minor_exponent(self.currency)
        return f"{self.amount:.{exponent}f} {self.currency}"
