"""Static files: the app's own CSS and JS, and the front-end packages scripts/setup installs
(htmx, Swagger UI, ReDoc) from the npm registry into WEB_ASSETS_DIR. Nothing comes from a CDN."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from postpilot.settings import Settings

OWN = Path(__file__).parent / "static"
# URL prefix -> the folder inside node_modules that serves it.
PACKAGES = {
    "htmx": "htmx.org/dist",
    "swagger-ui": "swagger-ui-dist",
    "redoc": "redoc/bundles",
}
HTMX = "/assets/htmx/htmx.min.js"
SWAGGER_JS = "/assets/swagger-ui/swagger-ui-bundle.js"
SWAGGER_CSS = "/assets/swagger-ui/swagger-ui.css"
SWAGGER_ICON = "/assets/swagger-ui/favicon-32x32.png"
REDOC_JS = "/assets/redoc/redoc.standalone.js"


def folder(settings: Settings) -> Path:
    if settings.WEB_ASSETS_DIR:
        return Path(settings.WEB_ASSETS_DIR)
    return Path(__file__).resolve().parents[3] / ".web-assets"  # beside src/ in a checkout


def missing(settings: Settings) -> list[str]:
    """The packages not installed (run `scripts/setup`)."""
    modules = folder(settings) / "node_modules"
    return [name for name, inner in PACKAGES.items() if not (modules / inner).is_dir()]


def mount(app: FastAPI, settings: Settings) -> None:
    app.mount("/static", StaticFiles(directory=OWN), name="static")
    modules = folder(settings) / "node_modules"
    for name, inner in PACKAGES.items():
        # check_dir=False: without the packages the app still starts; their URLs answer 404.
        files = StaticFiles(directory=modules / inner, check_dir=False)
        app.mount(f"/assets/{name}", files, name=f"assets-{name}")
