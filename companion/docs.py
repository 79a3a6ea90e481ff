"""`/api/docs`: Swagger UI 5 (it reads OpenAPI 3.1), its assets from the swagger-ui-py wheel, never a CDN."""

from __future__ import annotations

from pathlib import Path

import swagger_ui
from flask import Blueprint, send_from_directory

from companion.auth.access import PUBLIC, allow

ASSETS = Path(swagger_ui.__file__).resolve().parent / "static"

bp = Blueprint("docs", __name__)

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Companion API</title>
<link rel="stylesheet" href="/api/docs/assets/swagger-ui.css"></head>
<body><div id="swagger-ui"></div>
<script src="/api/docs/assets/swagger-ui-bundle.js"></script>
<script src="/api/docs/init.js"></script>
</body></html>"""

INIT = (
    """window.ui = SwaggerUIBundle({url: "/api/openapi.json", dom_id: "#swagger-ui", deepLinking: true});"""
)


@bp.get("/api/docs")
@allow(PUBLIC)
def page():
    """The browsable API contract."""
    return PAGE, 200, {"Content-Type": "text/html; charset=utf-8"}


@bp.get("/api/docs/init.js")
@allow(PUBLIC)
def init_script():
    # A separate file, not an inline script, so a strict Content-Security-Policy can apply.
    return INIT, 200, {"Content-Type": "text/javascript; charset=utf-8"}


@bp.get("/api/docs/assets/<path:filename>")
@allow(PUBLIC)
def assets(filename: str):
    return send_from_directory(ASSETS, filename, max_age=3600)
