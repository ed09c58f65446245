"""Routes: sign-in, the caller, accounts, members, delegations, invitations, tokens."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Request, Response, Security
from fastapi.concurrency import run_in_threadpool
from fastapi.security import HTTPAuthorizationCredentials

from collector.fleet import access, invitations, passwords, signin, tokens
from collector.fleet.auth import Context, CurrentCaller, api_key, bearer
from collector.fleet.context import get_context
from collector.fleet.errors import Forbidden, InvalidInput, RateLimited, Unauthorized
from collector.fleet.schemas import (
    AcceptIn,
    AccountIn,
    AccountOut,
    DelegationIn,
    DelegationOut,
    InvitationIn,
    InvitationOut,
    LoginIn,
    MemberOut,
    MeOut,
    RoleIn,
    TokenIn,
    TokenInfoOut,
    TokenOut,
)

public = APIRouter(tags=["auth"])
router = APIRouter(tags=["accounts"])


def _account_out(row: object, role: str | None) -> AccountOut:
    r = dict(row)  # type: ignore[call-overload]
    return AccountOut(
        id=r["id"],
        name=r["name"] or "",
        parent_id=r["parent_id"],
        kind=r["kind"],
        status=r["status"],
        role=role,
        timezone=r.get("timezone") or "UTC",
    )


RATE_LIMITED: dict[int | str, dict[str, Any]] = {
    429: {
        "description": "Too many failed sign-ins for this account or address;"
        " ``Retry-After`` says how many seconds to wait",
        "headers": {"Retry-After": {"schema": {"type": "integer"}}},
    }
}


@public.post("/auth/login", summary="Sign in with e-mail and password", responses=RATE_LIMITED)
async def login(body: LoginIn, request: Request) -> TokenOut:
    """Open a 12-hour session; the token is shown once.

    After 5 failed attempts for one account, or 20 from one address, within
    15 minutes, attempts get 429 with ``Retry-After`` until the oldest failure
    is 15 minutes old. Refusals are answered on the event loop after a 1 s
    pause (no thread, no CPU: it only slows a guessing loop); the password
    check (database read, hash, session write) runs on a worker thread, never
    on the event loop and never inside a transaction.
    """
    ctx = get_context(request)
    address = request.client.host if request.client is not None else "unknown"
    try:
        signin.admit(ctx.sign_in, body.email, address)
    except RateLimited:
        await asyncio.sleep(ctx.sign_in.refusal_delay)  # a tarpit that costs no CPU
        raise
    issued = await run_in_threadpool(
        signin.check_and_open,
        ctx.database,
        ctx.sign_in,
        body.email,
        body.password,
        address,
        clock=ctx.clock,
    )
    return TokenOut(
        id=issued.id, token=issued.token, kind=issued.kind, expires_at=issued.expires_at
    )


@public.post("/auth/logout", status_code=204, summary="Sign out: revoke the presented token")
def logout(
    ctx: Context,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Security(bearer)] = None,
    key: Annotated[str | None, Security(api_key)] = None,
) -> Response:
    """Revoke the session token (or API key) this request presents, at once and for good."""
    token = credentials.credentials if credentials is not None else key
    with ctx.tx() as conn:
        if not token or not tokens.revoke_presented(conn, ctx.now(), token):
            raise HTTPException(
                401, "invalid or expired token", headers={"WWW-Authenticate": "Bearer"}
            )
    return Response(status_code=204)


@public.post("/invitations/accept", summary="Accept an invitation (as its addressee)")
def accept_invitation(ctx: Context, body: AcceptIn) -> TokenOut:
    """Create or join the user, grant the invited role and sign in."""
    with ctx.read() as conn:
        checked = invitations.check_link(conn, ctx.now(), body.token, body.email)
    # Hash or verify with no transaction open (and within the sign-in hashing slots).
    new_hash = None
    if checked.user_id is None:
        new_hash = ctx.sign_in.hash_new(body.password)
    elif not ctx.sign_in.verify(body.password, checked.password_hash or passwords.DUMMY_HASH):
        raise Unauthorized("wrong password for this existing user")
    with ctx.tx() as conn:
        user_id = invitations.complete(
            conn,
            ctx.now(),
            body.token,
            email=body.email,
            checked=checked,
            new_password_hash=new_hash,
            name=body.name,
        )
        issued = tokens.issue_token(conn, ctx.now(), user_id, kind="session", name="invitation")
    return TokenOut(
        id=issued.id, token=issued.token, kind=issued.kind, expires_at=issued.expires_at
    )


@router.get("/me", summary="Who am I and which accounts can I reach")
def me(ctx: Context, caller: CurrentCaller) -> MeOut:
    """The caller with every account in scope and its role."""
    with ctx.read() as conn:
        rows = access.visible_accounts(conn, caller)
    return MeOut(
        user_id=caller.user_id,
        email=caller.email,
        is_operator=caller.is_operator,
        accounts=[_account_out(r, caller.roles.get(r["id"], "operator")) for r in rows],
    )


@router.get("/accounts", summary="Accounts in the caller's scope")
def list_accounts(ctx: Context, caller: CurrentCaller) -> list[AccountOut]:
    """Every account the caller may see."""
    with ctx.read() as conn:
        rows = access.visible_accounts(conn, caller)
    return [_account_out(r, caller.roles.get(r["id"], "operator")) for r in rows]


@router.post("/accounts", status_code=201, summary="Create a subsidiary or a partner's customer")
def create_account(ctx: Context, caller: CurrentCaller, body: AccountIn) -> AccountOut:
    """With ``parent_id``: a subsidiary. With ``partner_id``: a customer the partner manages."""
    with ctx.tx() as conn:
        now = ctx.now()
        if body.parent_id and body.partner_id:
            raise InvalidInput("give parent_id or partner_id, not both")
        if body.parent_id:
            caller.require_write(body.parent_id)
        elif body.partner_id:
            caller.require_write(body.partner_id)
        elif not caller.is_operator:
            raise Forbidden("only operators create top-level accounts")
        if body.kind == "partner" and not caller.is_operator:
            raise Forbidden("only operators create partner accounts")
        aid = access.create_account(
            conn,
            now,
            body.name,
            account_id=body.id,
            parent_id=body.parent_id,
            kind=body.kind,
            timezone=body.timezone,
        )
        if body.partner_id:
            access.delegate(conn, now, aid, body.partner_id, "admin")
        row = access.get_account(conn, aid)
    return _account_out(row, "admin")


@router.get("/accounts/{account_id}", summary="One account")
def get_account(ctx: Context, caller: CurrentCaller, account_id: str) -> AccountOut:
    """An account in scope."""
    with ctx.read() as conn:
        caller.require_read(account_id)
        row = access.get_account(conn, account_id)
    return _account_out(row, caller.roles.get(account_id, "operator"))


@router.get("/accounts/{account_id}/users", summary="Members and roles")
def list_users(ctx: Context, caller: CurrentCaller, account_id: str) -> list[MemberOut]:
    """Users holding a role on this account."""
    with ctx.read() as conn:
        caller.require_read(account_id)
        rows = access.users_of(conn, account_id)
    return [
        MemberOut(user_id=r["id"], email=r["email"], name=r["name"], role=r["role"]) for r in rows
    ]


@router.put("/accounts/{account_id}/users/{user_id}", summary="Change a member's role")
def set_role(
    ctx: Context, caller: CurrentCaller, account_id: str, user_id: str, body: RoleIn
) -> MemberOut:
    """Make a member admin or read-only (409 for the account's last admin)."""
    with ctx.tx() as conn:
        caller.require_write(account_id)
        r = access.set_member_role(conn, account_id, user_id, body.role)
    return MemberOut(user_id=user_id, email=r["email"], name=r["name"], role=body.role)


@router.delete("/accounts/{account_id}/users/{user_id}", status_code=204, summary="Remove a member")
def remove_user(ctx: Context, caller: CurrentCaller, account_id: str, user_id: str) -> Response:
    """Withdraw a member's role on this account (409 for the account's last admin)."""
    with ctx.tx() as conn:
        caller.require_write(account_id)
        access.remove_member(conn, account_id, user_id)
    return Response(status_code=204)


@router.get("/accounts/{account_id}/delegations", summary="Partners managing this account")
def list_delegations(ctx: Context, caller: CurrentCaller, account_id: str) -> list[DelegationOut]:
    """Delegations granted by this customer account."""
    with ctx.read() as conn:
        caller.require_read(account_id)
        rows = access.delegations_to(conn, account_id)
    return [DelegationOut(**r) for r in rows]


@router.post("/accounts/{account_id}/delegations", status_code=201, summary="Delegate to a partner")
def add_delegation(
    ctx: Context, caller: CurrentCaller, account_id: str, body: DelegationIn
) -> DelegationOut:
    """Let a partner account manage this account."""
    with ctx.tx() as conn:
        caller.require_write(account_id)
        access.delegate(conn, ctx.now(), account_id, body.partner_id, body.role)
        row = next(
            r for r in access.delegations_to(conn, account_id) if r["partner_id"] == body.partner_id
        )
    return DelegationOut(**row)


@router.delete(
    "/accounts/{account_id}/delegations/{partner_id}", status_code=204, summary="Revoke a partner"
)
def revoke_delegation(
    ctx: Context, caller: CurrentCaller, account_id: str, partner_id: str
) -> Response:
    """Withdraw a partner's delegation."""
    with ctx.tx() as conn:
        caller.require_write(account_id)
        access.revoke_delegation(conn, account_id, partner_id)
    return Response(status_code=204)


@router.get("/accounts/{account_id}/invitations", summary="Invitations of an account")
def list_invitations(ctx: Context, caller: CurrentCaller, account_id: str) -> list[InvitationOut]:
    """Sent invitations and their state (never their links)."""
    with ctx.read() as conn:
        caller.require_read(account_id)
        rows = invitations.list_invitations(conn, account_id)
    return [InvitationOut(**dict(r)) for r in rows]


@router.post("/accounts/{account_id}/invitations", status_code=201, summary="Invite a person")
def invite(
    ctx: Context, caller: CurrentCaller, account_id: str, body: InvitationIn
) -> InvitationOut:
    """E-mail a 30-day, single-use invitation bound to one address."""
    with ctx.tx() as conn:
        caller.require_write(account_id)
        sent = invitations.invite(
            conn,
            ctx.now(),
            ctx.mailer,
            account_id,
            email=body.email,
            role=body.role,
            invited_by=caller.user_id,
            base_url=ctx.base_url,
            link_key=ctx.link_key,
        )
        row = invitations.get_invitation(conn, sent.id)
    return InvitationOut(**{k: row[k] for k in InvitationOut.model_fields})


@router.post("/invitations/{invitation_id}/resend", summary="Send an invitation again")
def resend_invitation(ctx: Context, caller: CurrentCaller, invitation_id: str) -> InvitationOut:
    """Replace the invitation with a new link; the old one stops working."""
    with ctx.tx() as conn:
        old = invitations.get_invitation(conn, invitation_id)
        caller.require_write(old["account_id"])
        sent = invitations.resend(
            conn,
            ctx.now(),
            ctx.mailer,
            invitation_id,
            invited_by=caller.user_id,
            base_url=ctx.base_url,
            link_key=ctx.link_key,
        )
        row = invitations.get_invitation(conn, sent.id)
    return InvitationOut(**{k: row[k] for k in InvitationOut.model_fields})


@router.get("/tokens", summary="My tokens and API keys")
def list_tokens(ctx: Context, caller: CurrentCaller) -> list[TokenInfoOut]:
    """The caller's sessions and API keys (never the secrets)."""
    with ctx.read() as conn:
        rows = tokens.list_tokens(conn, caller.user_id)
    return [TokenInfoOut(**dict(r)) for r in rows]


@router.post("/tokens", status_code=201, summary="Create an API key")
def create_token(ctx: Context, caller: CurrentCaller, body: TokenIn) -> TokenOut:
    """A long-lived API key with the caller's own scope; shown once."""
    with ctx.tx() as conn:
        issued = tokens.issue_token(conn, ctx.now(), caller.user_id, kind="api_key", name=body.name)
    return TokenOut(
        id=issued.id, token=issued.token, kind=issued.kind, expires_at=issued.expires_at
    )


@router.delete("/tokens/{token_id}", status_code=204, summary="Revoke a token or API key")
def revoke_token(ctx: Context, caller: CurrentCaller, token_id: str) -> Response:
    """Revoke one of the caller's tokens."""
    with ctx.tx() as conn:
        tokens.revoke_token(conn, ctx.now(), caller.user_id, token_id)
    return Response(status_code=204)
