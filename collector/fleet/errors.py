"""Errors of the fleet package.

```
FleetError
├── NotFound        the object does not exist or the caller may not see it
├── Forbidden       the caller sees the object but may not do this
├── Conflict        the request contradicts the current state
├── InvalidInput    a value is out of range or malformed
├── Unauthorized    no valid credentials were presented
├── Gone            an invitation link expired, was used or was replaced
└── RateLimited     too many failed sign-ins; ``retry_after`` seconds to wait
```

Routes map them to HTTP 404, 403, 409, 400, 401, 410 and 429 (with
``Retry-After``).
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


class RateLimited(FleetError):
    """Too many failed attempts; the caller may try again after ``retry_after`` seconds."""

    status_code = 429

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after

    @property
    def headers(self) -> dict[str, str]:
        """The HTTP headers that go with the error."""
        return {"Retry-After": str(self.retry_after)}
