"""What every billing request body shares: valid Unicode, bounded dates, strict numbers.

Money and quantity fields use ``StrictInt`` (``"2"``, ``2.0`` and ``true`` are
422, not coerced) with an upper bound; dates and times must fall in the years
``MIN_YEAR``..``MAX_YEAR`` (``9999-12-31`` would overflow date arithmetic,
``0001-01-01`` is no real billing date); no text may hold a lone surrogate.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, field_validator

MIN_YEAR, MAX_YEAR = 2000, 2099


def _in_range(value: date) -> date:
    if not MIN_YEAR <= value.year <= MAX_YEAR:
        raise ValueError(f"must fall within the years {MIN_YEAR}-{MAX_YEAR}")
    return value


BoundedDate = Annotated[date, AfterValidator(_in_range)]
BoundedDateTime = Annotated[datetime, AfterValidator(_in_range)]


def check_unicode(value: object) -> None:
    """Raise ValueError if a text (or one inside lists and dicts) is not valid Unicode."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise ValueError("text must be valid Unicode (no lone surrogates)") from exc
    elif isinstance(value, dict):
        for k, v in value.items():
            check_unicode(k)
            check_unicode(v)
    elif isinstance(value, list | tuple):
        for v in value:
            check_unicode(v)


class In(BaseModel):
    """Base of the billing request bodies: every text field is valid Unicode."""

    @field_validator("*", mode="after")
    @classmethod
    def _valid_unicode(cls, value: Any) -> Any:
        check_unicode(value)
        return value
