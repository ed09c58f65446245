"""The services page: who a service may be activated for.

Activations themselves live in the billing component (they drive rating);
the fleet checks that the subject belongs to the account: a registered
device of the account, a user holding a role on it, or the organization
(the account itself).
"""

from __future__ import annotations

from collector.fleet.errors import InvalidInput, NotFound
from collector.fleet.registry import Store, registry_of

SUBJECT_KINDS = ("device", "user", "organization")


def check_subject(store: Store, account_id: str, subject_kind: str, subject_id: str) -> None:
    """Raise NotFound unless the subject belongs to the account."""
    reg = registry_of(store)
    if subject_kind == "device":
        device = reg.device(subject_id)
        found = device is not None and device["account_id"] == account_id
    elif subject_kind == "user":
        found = reg.is_member(subject_id, account_id)
    elif subject_kind == "organization":
        found = subject_id == account_id
    else:
        raise InvalidInput(f"subject kind must be one of {SUBJECT_KINDS}")
    if not found:
        raise NotFound(f"{subject_kind} {subject_id!r} not found in this account")
