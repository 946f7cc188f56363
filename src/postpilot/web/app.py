"""Install the web app on the API's FastAPI app: pages at `/`, static files, offline docs."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response

from postpilot.settings import Settings
from postpilot.web import (
    access,
    accounts_page,
    assets,
    attention,
    auth,
    composer,
    dashboard,
    docs,
    members,
    post_page,
    profile,
    shell,
)
from postpilot.web import calendar as calendar_page
from postpilot.web.render import page


def install(app: FastAPI, settings: Settings) -> None:
    """Call after the API's routers; the app must be made with docs_url=None, redoc_url=None."""
    assets.mount(app, settings)
    app.include_router(docs.router_for(app))
    for router in (
        access.router,
        members.router,
        profile.router,
        shell.router,
        calendar_page.router,
        composer.router,
        post_page.router,
    ):
        app.include_router(router)
    for router in (accounts_page.router, attention.router, dashboard.router):
        app.include_router(router)

    @app.exception_handler(auth.Refused)
    async def refused(request: Request, exc: auth.Refused) -> Response:
        # A person's navigation (or htmx acting for them) gets a page; other callers the shape.
        wants_page = bool(request.headers.get("hx-request")) or (
            request.method == "GET" and "text/html" in request.headers.get("accept", "")
        )
        if wants_page and exc.status == 401:
            return RedirectResponse("/login", status_code=303)
        if wants_page:
            signed = getattr(request.state, "signed", None)
            return page(
                request,
                "message.html",
                signed,
                title="Not here",
                status=exc.status,
                message=exc.message[:1].upper() + exc.message[1:] + ".",
            )
        body = {"error": {"code": exc.code, "message": exc.message, "details": []}}
        return JSONResponse(body, status_code=exc.status)
