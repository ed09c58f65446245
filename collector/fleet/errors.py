"""Errors of the fleet package.

```
CollectorError                 (collector.errors)
└── FleetError
    ├── NotFound        the object does not exist or the caller may not see it
    ├── Forbidden       the caller sees the object but may not do this
    ├── Conflict        the request contradicts the current state
    ├── InvalidInput    a value is out of range or malformed
    ├── Unauthorized    no valid credentials were presented
    ├── Gone            an invitation link expired, was used or was replaced
    └── RateLimited     too many failed sign-ins; ``retry_after`` seconds to wait
```

They say what went wrong, not how to answer it: the HTTP mapping (404, 403,
409, 400, 401, 410, 429 with ``Retry-After``) is the API's, in
``collector.api.errors``; the CLIs print the message on one line.
"""

from __future__ import annotations

from collector.errors import CollectorError


class FleetError(CollectorError):
    """Base class of every fleet error."""


class NotFound(FleetError):
    """The object does not exist, or the caller may not see it."""


class Forbidden(FleetError):
    """The caller may see the object but not change it."""


class Conflict(FleetError):
    """The request contradicts the current state."""


class InvalidInput(FleetError):
    """A value is malformed or out of range (FastAPI's schema validation stays 422)."""


class Unauthorized(FleetError):
    """No valid credentials were presented."""


class Gone(FleetError):
    """A link that has expired, been used or been replaced by a newer one."""


class RateLimited(FleetError):
    """Too many failed attempts; the caller may try again after ``retry_after`` seconds."""

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after
