"""/docs (Swagger UI) and /redoc from locally installed files, so they work offline."""

from __future__ import annotations

from fastapi import APIRouter, FastAPI
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse

from postpilot.web import assets


def router_for(app: FastAPI) -> APIRouter:
    router = APIRouter(include_in_schema=False)
    openapi_url = app.openapi_url or "/openapi.json"

    @router.get("/docs")
    async def swagger() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=openapi_url,
            title=f"{app.title} API",
            swagger_js_url=assets.SWAGGER_JS,
            swagger_css_url=assets.SWAGGER_CSS,
            swagger_favicon_url=assets.SWAGGER_ICON,
        )

    @router.get("/redoc")
    async def redoc() -> HTMLResponse:
        return get_redoc_html(
            openapi_url=openapi_url,
            title=f"{app.title} API",
            redoc_js_url=assets.REDOC_JS,
            redoc_favicon_url=assets.SWAGGER_ICON,
            with_google_fonts=False,
        )

    return router
