"""Authentication: a bearer token or API key resolves to a scoped Caller.

Tokens are presented as ``Authorization: Bearer lbt_…`` (API keys may also
use ``X-API-Key``); only their SHA-256 is stored. An unknown, expired or
revoked token gets 401. The Caller carries the accounts the user may read
and write (memberships, subsidiaries, partner delegations).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, HTTPException, Security
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from collector.fleet.access import Caller, caller_for_user
from collector.fleet.context import FleetContext, get_context
from collector.fleet.tokens import user_for_token

bearer = HTTPBearer(auto_error=False, description="A session token or API key (lbt_…)")
api_key = APIKeyHeader(name="X-API-Key", auto_error=False, description="An API key (lbt_…)")

Context = Annotated[FleetContext, Depends(get_context)]


def get_caller(
    ctx: Context,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Security(bearer)] = None,
    key: Annotated[str | None, Security(api_key)] = None,
) -> Caller:
    """FastAPI dependency: resolve the presented token to a Caller, or 401."""
    token = credentials.credentials if credentials is not None else key
    if not token:
        raise HTTPException(401, "missing credentials", headers={"WWW-Authenticate": "Bearer"})
    with ctx.read() as conn:
        user_id = user_for_token(conn, ctx.now(), token)
        if user_id is None:
            raise HTTPException(
                401, "invalid or expired token", headers={"WWW-Authenticate": "Bearer"}
            )
        return caller_for_user(conn, user_id)


CurrentCaller = Annotated[Caller, Depends(get_caller)]
