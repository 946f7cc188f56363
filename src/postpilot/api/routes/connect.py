"""/api/connect: connect accounts the way each platform offers it (its consent page, or what it
issued to the person), each checked live before it exists. The callback takes no API key: the
single-use state it carries is the credential."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse, RedirectResponse, Response
from starlette import convertors

from postpilot.api import errors
from postpilot.api.connecting import ServiceDep, connect_errors, result, started
from postpilot.api.deps import ActorDep, SessionDep, WorkspaceDep
from postpilot.api.schemas import (
    ConnectChoose,
    ConnectInputPublic,
    ConnectPlatformPublic,
    ConnectResult,
    ConnectStart,
)
from postpilot.connect import flows
from postpilot.connect.base import Input, Method
from postpilot.connect.outcomes import Finished

router = APIRouter(prefix="/api/connect", tags=["connect"])


class PlatformName(convertors.StringConvertor):
    """A platform in `/api/connect/{platform}`: never `callback`, so that path is only the
    callback's (its Allow header names GET alone)."""

    regex = "(?!callback$)[^/]+"


convertors.register_url_convertor("platform", PlatformName())

REFUSALS: dict[int | str, dict[str, Any]] = {
    422: {
        "description": "An input is missing or not valid, the platform's app is not configured "
        "(`platform_not_configured`), or the platform refused (`connect_refused`, naming the "
        "field): nothing was connected."
    }
}


def _inputs(declared: tuple[Input, ...]) -> list[ConnectInputPublic]:
    return [
        ConnectInputPublic(
            name=i.name, description=i.description, secret=i.secret, required=i.required
        )
        for i in declared
    ]


@router.get("", response_model=list[ConnectPlatformPublic])
async def list_platforms(
    _workspace: WorkspaceDep, service: ServiceDep
) -> list[ConnectPlatformPublic]:
    """Every platform that can be connected: how, with what, and whether this deployment has
    the platform's app (its settings are in `.env.example`)."""
    redirect_uri = flows.callback_url(service.runtime.settings.PUBLIC_BASE_URL)
    return [
        ConnectPlatformPublic(
            platform=platform,
            methods=[m.value for m in connector.methods],
            start_inputs=_inputs(connector.start_inputs),
            direct_inputs=_inputs(connector.direct_inputs),
            configured=service.configured(connector),
            scopes=list(connector.scopes),
            redirect_uri=redirect_uri,
        )
        for platform, connector in sorted(service.connectors.items())
    ]


@router.post(
    "/{platform:platform}", status_code=201, response_model=ConnectResult, responses=REFUSALS
)
async def start(
    platform: str,
    body: ConnectStart,
    workspace: WorkspaceDep,
    actor: ActorDep,
    session: SessionDep,
    service: ServiceDep,
) -> ConnectResult:
    """`oauth`: a flow bound to this workspace (single use, 10 minutes, PKCE where the
    platform has it) and the URL to send the person to. `direct`: the account, checked live,
    or the choices when the sign-in reaches several."""
    with connect_errors():
        if body.method == Method.OAUTH.value:
            return started(
                await service.start(
                    workspace_id=workspace.id,
                    platform=platform,
                    inputs=body.inputs,
                    actor=actor,
                    success_url=body.success_url,
                )
            )
        finished = await service.connect_direct(
            workspace_id=workspace.id, platform=platform, inputs=body.inputs, actor=actor
        )
    return await result(session, workspace.id, finished)


def _redirect(finished: Finished) -> Response:
    assert finished.success_url is not None
    if finished.status == "done":
        params = {"account_id": ",".join(finished.account_ids)}
    elif finished.status == "choosing":
        params = {"flow_id": finished.flow_id or "", "status": "choosing"}
    else:
        params = {"error": finished.error or "failed", "message": finished.message or ""}
    return RedirectResponse(flows.with_query(finished.success_url, params), status_code=303)


@router.get(
    "/callback",
    response_model=ConnectResult,
    responses={
        303: {"description": "To the flow's success URL, with the outcome in the query."},
        400: {
            "description": "`invalid_state`: the state is unknown, used or expired; "
            "`access_denied`: the person declined at the platform."
        },
        **REFUSALS,
    },
)
async def callback(
    session: SessionDep,
    service: ServiceDep,
    state: Annotated[str | None, Query(max_length=500)] = None,
    code: Annotated[str | None, Query(max_length=2000)] = None,
    error: Annotated[str | None, Query(max_length=200)] = None,
    error_description: Annotated[str | None, Query(max_length=2000)] = None,
) -> Response:
    """Where the platform sends the person back: the code is exchanged, the account checked
    live and stored encrypted; then the browser goes to the flow's success URL."""
    with connect_errors():
        finished = await service.callback(
            state=state, code=code, error=error, error_description=error_description
        )
    if finished.success_url:
        return _redirect(finished)
    if finished.status == "failed":
        status = 400 if finished.error == "access_denied" else 422
        return errors.response(status, finished.error or "failed", finished.message or "")
    body = await result(session, finished.workspace_id or "", finished)
    return JSONResponse(body.model_dump(mode="json"))


@router.get("/flows/{flow_id}", response_model=ConnectResult)
async def get_flow(
    flow_id: str, workspace: WorkspaceDep, session: SessionDep, service: ServiceDep
) -> ConnectResult:
    """A flow's status, its choices (without secrets) while `choosing`, what it connected."""
    with connect_errors():
        finished = await service.flow(workspace.id, flow_id)
    return await result(session, workspace.id, finished)


@router.post(
    "/flows/{flow_id}/choose",
    response_model=ConnectResult,
    responses={409: {"description": "The flow is not waiting for a choice."}, **REFUSALS},
)
async def choose(
    flow_id: str,
    body: ConnectChoose,
    workspace: WorkspaceDep,
    actor: ActorDep,
    session: SessionDep,
    service: ServiceDep,
) -> ConnectResult:
    """Connect the picked pages, channels or rooms of a flow (each checked live)."""
    with connect_errors():
        finished = await service.choose(
            workspace_id=workspace.id, flow_id=flow_id, platform_ids=body.platform_ids, actor=actor
        )
    return await result(session, workspace.id, finished)
