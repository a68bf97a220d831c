"""Template rendering shared by the web pages."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.templating import Jinja2Templates

__all__ = ["error_page", "render", "templates"]

templates = Jinja2Templates(directory=str(Path(__file__).parent / "templates"))


def render(request: Request, name: str, status: int = 200, **context: Any) -> HTMLResponse:
    settings = request.app.state.settings
    context.setdefault("instance_name", settings.instance_name)
    context.setdefault("domain", settings.domain)
    context.setdefault("source_url", settings.source_url)
    context.setdefault("session_user", request.session.get("username"))
    return templates.TemplateResponse(request, name, context, status_code=status)


def error_page(request: Request, status: int, message: str) -> HTMLResponse:
    return render(request, "error.html", status=status, status_code=status, message=message)
