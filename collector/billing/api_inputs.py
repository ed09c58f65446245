"""Valid Unicode in request bodies: the check the mounted API's schemas apply to every text.

``check_unicode`` refuses a lone surrogate anywhere in a value (texts inside
lists and dicts too); ``collector.fleet.schemas`` runs it on every field of
every request body, so no such text reaches the ledger or an e-mail.
"""

from __future__ import annotations


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
