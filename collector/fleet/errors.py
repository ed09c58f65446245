"""Errors of the fleet package.

```
FleetError
├── NotFound        the object does not exist or the caller may not see it
├── Forbidden       the caller sees the object but may not do this
├── Conflict        the request contradicts the current state
├── InvalidInput    a value is out of range or malformed
├── Unauthorized    no valid credentials were presented
└── Gone            an invitation link expired, was used or was replaced
```

Routes map them to HTTP 404, 403, 409, 400, 401 and 410.
"""

from __future__ import annotations


class FleetError(Exception):
    """Base class of every fleet error."""

    status_code = 400


class NotFound(FleetError):
    """The object does not exist, or the caller may not see it."""

    status_code = 404


class Forbidden(FleetError):
    """The caller may see the object but not change it."""

    status_code = 403


class Conflict(FleetError):
    """The request contradicts the current state."""

    status_code = 409


class InvalidInput(FleetError):
    """A value is malformed or out of range (422 stays FastAPI's schema validation)."""

    status_code = 400


class Unauthorized(FleetError):
    """No valid credentials were presented."""

    status_code = 401


class Gone(FleetError):
    """A link that has expired, been used or been replaced by a newer one."""

    status_code = 410
