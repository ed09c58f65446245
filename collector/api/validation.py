"""422 answers that can always be sent, whatever the client put in its JSON.

FastAPI's own handler echoes the offending input back; a lone surrogate
(JSON ``"\\ud800"``) cannot be encoded as UTF-8, so that echo crashed into a
500 and a reset connection. This handler answers the same 422 body with such
characters written as escapes (``\\ud800``).
"""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse


def printable(value: object) -> object:
    """``value`` with every text made encodable (lone surrogates become escapes)."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return value.encode("utf-8", "backslashreplace").decode("utf-8")
        return value
    if isinstance(value, dict):
        return {printable(k): printable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [printable(v) for v in value]
    return value


async def validation_error(_: Request, exc: Exception) -> JSONResponse:
    """Answer a request validation error with 422 and its (printable) details."""
    errors = exc.errors() if isinstance(exc, RequestValidationError) else [str(exc)]
    return JSONResponse(status_code=422, content={"detail": printable(jsonable_encoder(errors))})


def install(app: FastAPI) -> None:
    """Use :func:`validation_error` for the app's request validation errors."""
    app.add_exception_handler(RequestValidationError, validation_error)
