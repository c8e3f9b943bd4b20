"""Exact money: decimal strings in, integer minor units plus an ISO 4217 code stored."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
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


def parse_minor(text: str, currency: str) -> int:
    """Parse a decimal string such as "12.50" into minor units of `currency`, exactly.

    More decimals than the currency has are refused unless they are zeros ("1200.00" JPY is
    1200, "12.345" USD is an error), so no amount is ever silently rounded.
    """
    exponent = minor_exponent(currency)
    # Fast path for the everyday form "1234" / "1234.5": pure integer arithmetic.
    whole, _, fraction = text.partition(".")
    if whole.isdigit() and (not fraction or fraction.isdigit()):
        scale: int = 10**exponent
        if len(fraction) <= exponent:
            return int(whole) * scale + (int(fraction.ljust(exponent, "0")) if exponent else 0)
        if not fraction[exponent:].strip("0"):
            return int(whole) * scale + (int(fraction[:exponent]) if exponent else 0)
        raise MoneyError(f"has more decimals than {currency} allows ({exponent})")
    try:
        value = Decimal(text.strip())
    except InvalidOperation:
        raise MoneyError("is not a decimal amount") from None
    if not value.is_finite():
        raise MoneyError("is not a finite amount")
    scaled = value.scaleb(exponent)
    if scaled != scaled.to_integral_value():
        raise MoneyError(f"has more decimals than {currency} allows ({exponent})")
    return int(scaled)


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
