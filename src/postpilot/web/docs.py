"""/docs (Swagger UI) and /redoc from locally installed files, so they work offline."""

from __future__ import annotations

from fastapi import APIRouter, FastAPI
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse

from postpilot.web import assets

# Nothing may leave the server: ReDoc's bundle links its logo from its vendor's CDN, which this
# policy keeps the browser from fetching. Swagger UI starts from an inline script; ReDoc searches
# in a worker made from a blob.
POLICY = (
    "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; font-src 'self' data:; worker-src 'self' blob:; connect-src 'self'"
)


def router_for(app: FastAPI) -> APIRouter:
    router = APIRouter(include_in_schema=False)
    openapi_url = app.openapi_url or "/openapi.json"

    @router.get("/docs")
    async def swagger() -> HTMLResponse:
        page = get_swagger_ui_html(
            openapi_url=openapi_url,
            title=f"{app.title} API",
            swagger_js_url=assets.SWAGGER_JS,
            swagger_css_url=assets.SWAGGER_CSS,
            swagger_favicon_url=assets.SWAGGER_ICON,
        )
        page.headers["Content-Security-Policy"] = POLICY
        return page

    @router.get("/redoc")
    async def redoc() -> HTMLResponse:
        page = get_redoc_html(
            openapi_url=openapi_url,
            title=f"{app.title} API",
            redoc_js_url=assets.REDOC_JS,
            redoc_favicon_url=assets.SWAGGER_ICON,
            with_google_fonts=False,
        )
        page.headers["Content-Security-Policy"] = POLICY
        return page

    return router
