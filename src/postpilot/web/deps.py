"""Dependencies of the pages: a database session, the signed-in member (CSRF-checked on every
state-changing request), and the check of the anonymous forms."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession

from postpilot.store import users
from postpilot.store.web_sessions import SignedIn
from postpilot.web import auth


async def db_session(request: Request) -> AsyncIterator[AsyncSession]:
    async with auth.runtime_of(request).db.session() as session:
        yield session


DbSession = Annotated[AsyncSession, Depends(db_session)]


async def maybe_signed_in(request: Request, session: DbSession) -> SignedIn | None:
    return await auth.signed_in(request, session)


MaybeSignedIn = Annotated[SignedIn | None, Depends(maybe_signed_in)]


async def member(request: Request, session: DbSession, signed: MaybeSignedIn) -> SignedIn:
    if signed is None:
        raise auth.Refused(401, "unauthorized", "sign in first")
    request.state.signed = signed  # for the refusal page's navigation
    await auth.check_csrf(request, signed)
    # For the layout's workspace switcher.
    request.state.workspaces = await users.workspaces_of(session, signed.user.id)
    return signed


Member = Annotated[SignedIn, Depends(member)]


async def anonymous_form(request: Request) -> None:
    """The sign-in, first-run and invitation forms: checked against the pre-session cookie."""
    await auth.check_csrf(request, None)


AnonymousForm = Depends(anonymous_form)
