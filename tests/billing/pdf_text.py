"""Read the text of our PDFs without a PDF reader (the lock has only ReportLab, a writer).

Enough for what ReportLab writes with the standard fonts: every content
stream (ASCII85 and Flate encoded, or plain) is searched for the string operands of
``Tj`` and ``TJ``; PDF string escapes are undone and the bytes decoded as
WinAnsi (cp1252, where € is 0x80). One entry per shown string, in page order.
"""

from __future__ import annotations

import base64
import contextlib
import re
import zlib

_STREAM = re.compile(rb"\bstream\r?\n(.*?)endstream", re.DOTALL)
_SHOW = re.compile(rb"\((?P<s>(?:\\.|[^\\)])*)\)\s*Tj|\[(?P<a>(?:\\.|[^\]])*)\]\s*TJ", re.DOTALL)
_PART = re.compile(rb"\((?P<s>(?:\\.|[^\\)])*)\)", re.DOTALL)
_ESCAPE = re.compile(rb"\\([0-7]{1,3}|.)", re.DOTALL)
_SIMPLE = {b"n": b"\n", b"r": b"\r", b"t": b"\t", b"b": b"\b", b"f": b"\f"}


def _unescape(raw: bytes) -> str:
    def one(m: re.Match[bytes]) -> bytes:
        code = m.group(1)
        if code.isdigit():
            return bytes([int(code, 8)])
        return _SIMPLE.get(code, code)

    return _ESCAPE.sub(one, raw).decode("cp1252")


def streams(pdf: bytes) -> list[bytes]:
    """Every stream's content, inflated when it was compressed."""
    out = []
    for m in _STREAM.finditer(pdf):
        data = m.group(1).rstrip()
        if data.endswith(b"~>"):  # ReportLab's ASCII85 wrapping of the Flate data
            data = base64.a85decode(data[:-2], ignorechars=b" \t\r\n")
        with contextlib.suppress(zlib.error):  # not compressed
            data = zlib.decompress(data)
        out.append(data)
    return out


def shown_strings(pdf: bytes) -> list[str]:
    """The strings the pages show, in order."""
    found: list[str] = []
    for data in streams(pdf):
        for m in _SHOW.finditer(data):
            if m.group("s") is not None:
                found.append(_unescape(m.group("s")))
            else:
                found.append("".join(_unescape(p.group("s")) for p in _PART.finditer(m["a"])))
    return found


def text(pdf: bytes) -> str:
    """All shown strings, one per line."""
    return "\n".join(shown_strings(pdf))


def page_count(pdf: bytes) -> int:
    """How many ``/Type /Page`` objects the file has."""
    return len(re.findall(rb"/Type\s*/Page\b(?!s)", pdf))
