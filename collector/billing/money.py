"""Exact money: Decimal parsing, the one rounding rule, and display formats.

The rounding rule (the only one in the package):

* **Logbit ledger lines** are computed exactly (integer quantities summed
  first, then multiplied by Decimal prices; proration divisions in a
  60-digit context) and rounded **once per ledger line** to a whole logbit
  with ``ROUND_HALF_UP``. An entry's total is the sum of its rounded lines.
* **Euro amounts** (cart tax and totals) are rounded once per cart line to
  the cent with ``ROUND_HALF_UP``; the cart total is the sum of the rounded
  lines.

No float ever enters: ``to_decimal`` refuses floats and the price book is
parsed with ``tomllib``'s ``parse_float=Decimal``.
"""

from __future__ import annotations

import decimal
from decimal import ROUND_HALF_UP, Decimal

#: Context for exact-enough intermediate arithmetic (divisions of prorations).
EXACT = decimal.Context(prec=60, rounding=ROUND_HALF_UP, traps=[decimal.InvalidOperation])
ONE = Decimal(1)
CENT = Decimal("0.01")
ZERO = Decimal(0)


def to_decimal(value: object) -> Decimal:
    """Return ``value`` as a Decimal; refuse floats, bools and non-numeric text."""
    if isinstance(value, Decimal):
        result = value
    elif isinstance(value, (bool, float)):
        raise TypeError(f"money must not be {type(value).__name__}: {value!r}")
    elif isinstance(value, int):
        result = Decimal(value)
    elif isinstance(value, str):
        try:
            result = Decimal(value.strip())
        except decimal.InvalidOperation as exc:
            raise ValueError(f"not a decimal number: {value!r}") from exc
    else:
        raise TypeError(f"money must be Decimal, int or str, not {type(value).__name__}")
    if not result.is_finite():
        raise ValueError(f"not a finite number: {value!r}")
    return result


def round_logbit(amount: Decimal) -> Decimal:
    """Round an exact line amount to a whole logbit (ROUND_HALF_UP), once per line."""
    return amount.quantize(ONE, rounding=ROUND_HALF_UP, context=EXACT)


def round_cent(amount: Decimal) -> Decimal:
    """Round a euro amount to the cent (ROUND_HALF_UP)."""
    return amount.quantize(CENT, rounding=ROUND_HALF_UP, context=EXACT)


def divide(numerator: Decimal, denominator: int | Decimal) -> Decimal:
    """Divide in the 60-digit context (for prorations)."""
    return EXACT.divide(numerator, Decimal(denominator))


def format_logbit(amount: Decimal) -> str:
    """Display a logbit amount as the ledger does: ``-125``, ``100``."""
    text = format(amount.normalize() if amount == amount.to_integral() else amount, "f")
    return "0" if text in ("-0", "0") else text


def format_eur(amount: Decimal) -> str:
    """Display euros like the seed's cart: ``€112``, ``€24.64``."""
    value = round_cent(amount)
    if value == value.to_integral():
        return f"€{value.quantize(ONE)}"
    return f"€{value}"


def to_text(amount: Decimal) -> str:
    """Serialize a Decimal for a TEXT column (plain notation, no exponent)."""
    return format(amount, "f")
