"""What the connect and accounts routes share: the connect service per request, its refusals
in the API's error shape, and a flow's outcome as the API shows it."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends
from sqlalchemy.ext.asyncio import AsyncSession

from postpilot.api.deps import RuntimeDep
from postpilot.api.errors import ApiError
from postpilot.api.schemas import AccountPublic, ConnectChoicePublic, ConnectResult
from postpilot.connect.base import AppNotConfigured, ConnectRefused
from postpilot.connect.outcomes import ConnectError, Finished, Started
from postpilot.connect.service import ConnectService
from postpilot.store import accounts


def get_service(runtime: RuntimeDep) -> ConnectService:
    return ConnectService(runtime)


ServiceDep = Annotated[ConnectService, Depends(get_service)]


@contextlib.contextmanager
def connect_errors() -> Iterator[None]:
    """The service's refusals in the API's error shape."""
    try:
        yield
    except ConnectError as exc:
        details = [{"field": exc.field, "message": exc.message}] if exc.field else []
        raise ApiError(exc.status, exc.code, exc.message, details) from None
    except ConnectRefused as exc:
        details = [{"field": exc.field, "message": exc.message}] if exc.field else []
        raise ApiError(422, "connect_refused", exc.message, details) from None
    except AppNotConfigured as exc:
        raise ApiError(422, "platform_not_configured", str(exc)) from None


def started(flow: Started) -> ConnectResult:
    return ConnectResult(
        flow_id=flow.flow_id,
        status="authorize",
        authorize_url=flow.authorize_url,
        expires_at=flow.expires_at,
    )


async def result(session: AsyncSession, workspace_id: str, finished: Finished) -> ConnectResult:
    found = await accounts.accounts_by_ids(session, workspace_id, finished.account_ids)
    connected = [
        AccountPublic.model_validate(accounts.public_fields(found[i]))
        for i in finished.account_ids
        if i in found
    ]
    return ConnectResult(
        flow_id=finished.flow_id,
        status=finished.status,
        account=connected[0] if connected else None,
        accounts=connected,
        choices=[
            ConnectChoicePublic(platform_id=c.platform_id, name=c.name, handle=c.handle)
            for c in finished.choices
        ],
        retryable_delivery_ids=finished.retryable_delivery_ids,
        error=finished.error,
        message=finished.message,
    )
