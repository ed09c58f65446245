"""Errors of the modem package.

Hierarchy::

    ModemError                 anything the modem layer reports
    ├── AtError                the AT layer refused a transcript or an answer
    │   ├── AtTruncated        the data ended before a final result code (.partial)
    │   │   └── AtTimeout      no final result code before the deadline
    │   ├── AtGarbage          nothing but noise came back
    │   ├── AtCommandError     the modem answered ERROR / +CME ERROR / +CMS ERROR
    │   └── AtParseError       an information line does not say what it should
    └── PortError              the serial port cannot be used (.state)

The pure parser (``at_parser``, ``identity``) raises only ``AtError``
subclasses, whatever bytes it is given.
"""

from __future__ import annotations

from typing import Literal

PortState = Literal["absent", "unplugged", "busy", "garbage", "error"]


class ModemError(Exception):
    """Base of every error of the modem package."""


class AtError(ModemError):
    """The AT layer refused a transcript or an answer."""

    def __init__(self, message: str, *, command: str = "") -> None:
        super().__init__(f"{command}: {message}" if command else message)
        self.command = command


class AtTruncated(AtError):
    """The data ended before a final result code; ``partial`` holds the lines seen."""

    def __init__(self, message: str, *, command: str = "", partial: tuple[str, ...] = ()) -> None:
        super().__init__(message, command=command)
        self.partial = partial


class AtTimeout(AtTruncated):
    """No final result code arrived before the deadline."""


class AtGarbage(AtError):
    """Only noise (undecodable or control bytes) came back."""


class AtCommandError(AtError):
    """The modem answered ``ERROR``, ``+CME ERROR: n`` or ``+CMS ERROR: n``."""

    def __init__(self, *, command: str, kind: str, code: int | None, text: str) -> None:
        detail = (
            kind if code is None and not text else f"{kind} {code if code is not None else text}"
        )
        super().__init__(detail, command=command)
        self.kind = kind
        self.code = code
        self.text = text


class AtParseError(AtError):
    """An information line does not hold what the command promises."""


class PortError(ModemError):
    """The serial port cannot be used; ``state`` is what health reports."""

    def __init__(self, message: str, *, state: PortState) -> None:
        super().__init__(message)
        self.state: PortState = state
