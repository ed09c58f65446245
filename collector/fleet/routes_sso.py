"""Routes of OpenID Connect single sign-on (see ``sso.py`` for the rules).

``PUT /accounts/{a}/sso`` (account admins) registers the provider;
``GET /sso/{a}/start`` sends the browser to it; ``GET /sso/callback`` ends
the flow and sends the browser back to the portal with a session token in
the URL fragment (never sent to a server) or with the reason it was refused.
"""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Path, Query, Response
from fastapi.responses import RedirectResponse
from pydantic import BaseModel, ConfigDict, Field

from collector.fleet import sso, tokens
from collector.fleet.auth import Context, CurrentCaller
from collector.fleet.errors import FleetError

router = APIRouter(tags=["sso"])
public = APIRouter(tags=["sso"])
HTTP: sso.OidcHttp = sso.HttpxOidc()


class SsoIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    issuer: str = Field(min_length=8, max_length=300)
    client_id: str = Field(min_length=1, max_length=200)
    client_secret: str = Field(min_length=1, max_length=500)


@router.put("/accounts/{account_id}/sso", status_code=204, summary="Register the account's SSO")
def configure_sso(ctx: Context, caller: CurrentCaller, account_id: str, body: SsoIn) -> Response:
    """The account's OpenID Connect provider; redirect URI ``{base}/api/v1/sso/callback``."""
    with ctx.tx() as conn:
        caller.require_write(account_id)
        sso.configure(
            conn,
            ctx.now(),
            account_id,
            issuer=body.issuer,
            client_id=body.client_id,
            client_secret=body.client_secret,
        )
    return Response(status_code=204)


REDIRECT: dict[int | str, dict[str, Any]] = {
    302: {"description": "To the provider, or back to the portal"}
}


@public.get(
    "/sso/{account_id}/start",
    summary="Sign in through the account's provider",
    status_code=302,
    response_class=RedirectResponse,
    responses=REDIRECT,
)
def start(
    ctx: Context, account_id: Annotated[str, Path(min_length=1, max_length=64)]
) -> RedirectResponse:
    """Redirect to the provider's authorization endpoint (code flow with PKCE)."""
    with ctx.tx() as conn:
        url = sso.start(conn, ctx.now(), HTTP, account_id, ctx.base_url)
    return RedirectResponse(url, status_code=302)


@public.get(
    "/sso/callback",
    summary="Where the provider sends the browser back",
    status_code=302,
    response_class=RedirectResponse,
    responses=REDIRECT,
)
def callback(
    ctx: Context,
    state: Annotated[str, Query(max_length=200)] = "",
    code: Annotated[str, Query(max_length=2000)] = "",
    error: Annotated[str, Query(max_length=200)] = "",
) -> RedirectResponse:
    """Sign the matched user in, or tell the portal why not."""
    if error or not state or not code:
        reason = error or "the provider sent no code"
        return RedirectResponse(f"/portal/#sso-error={quote(reason)}", status_code=302)
    try:
        with ctx.tx() as conn:
            user_id, account_id = sso.finish(
                conn, ctx.now(), HTTP, state=state, code=code, base_url=ctx.base_url
            )
            token = tokens.issue_token(conn, ctx.now(), user_id, kind="session").token
    except FleetError as exc:
        return RedirectResponse(f"/portal/#sso-error={quote(str(exc))}", status_code=302)
    return RedirectResponse(
        f"/portal/#sso={quote(token)}&account={quote(account_id)}", status_code=302
    )
