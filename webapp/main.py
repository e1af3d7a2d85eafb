"""create_app(): middleware, routers, static files, error pages, lifespan."""

from __future__ import annotations

import gc
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial
from urllib.parse import quote, urlsplit

from fastapi import APIRouter, FastAPI, HTTPException, Request, status
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from sqlalchemy import text
from sqlalchemy.orm import Session, sessionmaker
from starlette.datastructures import MutableHeaders
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.sessions import SessionMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from webapp.alarms import views as alarm_views
from webapp.assets import views as asset_views
from webapp.blackbox import views as blackbox_views
from webapp.blackbox.writer import EventWriter
from webapp.config import PROJECT_ROOT, Settings, get_settings
from webapp.connectors.registry import close_all_connectors
from webapp.db import create_db_engine, create_session_factory, role_bypasses_rls, tenant_session
from webapp.demo.seed import demo_tenant, seed_demo_signal_mappings
from webapp.deps import NotAuthenticated, ReadPath, wants_json
from webapp.health import views as health_views
from webapp.health.service import HealthMonitor
from webapp.integrations import views as integration_views
from webapp.integrations.service import SourceAccess
from webapp.invalidation import InvalidationListener, TenantCache, Topic
from webapp.live.hub import LiveHub
from webapp.live.transport import ServerSendMiddleware
from webapp.logbook import views as logbook_views
from webapp.scanner import Leadership, Scanner
from webapp.templating import is_htmx, render_page
from webapp.tenancy import views as tenancy_views
from webapp.tenancy.service import live_credentials
from webapp.trends import views as trend_views
from webapp.twin import views as twin_views
from webapp.twin.live_charts import LiveCharts

SWAGGER_DIR = "/static/vendor/swagger-ui-5.35.0"

liveness = APIRouter(tags=["health"])


@liveness.get("/healthz")
def healthz(request: Request) -> dict[str, str]:
    """Liveness plus a real round trip to the database."""
    try:
        with request.app.state.engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except Exception as exc:  # any driver error means "not healthy", never a 500
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, "database unavailable") from exc
    return {"status": "ok"}


CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'self'; "
    "form-action 'self'; frame-ancestors 'none'"
)


HSTS = "max-age=31536000; includeSubDomains"


class SecurityHeadersMiddleware:
    """Pure ASGI (no BaseHTTPMiddleware): it must not buffer SSE streams.

    With `hsts`, responses to HTTPS requests carry Strict-Transport-Security; behind a TLS
    proxy uvicorn's proxy headers (X-Forwarded-Proto from FORWARDED_ALLOW_IPS) make the
    request's scheme https."""

    def __init__(self, app: ASGIApp, *, hsts: bool = False) -> None:
        self.app = app
        self.hsts = hsts

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers.setdefault("X-Content-Type-Options", "nosniff")
                headers.setdefault("Referrer-Policy", "same-origin")
                headers.setdefault("X-Frame-Options", "DENY")
                if self.hsts and scope.get("scheme") == "https":
                    headers.setdefault("Strict-Transport-Security", HSTS)
                if headers.get("content-type", "").startswith("text/html"):
                    headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
                response_started.append(True)
            await send(message)

        response_started: list[bool] = []
        try:
            await self.app(scope, receive, send_with_headers)
        except Exception:
            # Starlette's outermost ServerErrorMiddleware would answer a bare text 500 without
            # these headers; answer here (JSON, like every error) and let it log the exception.
            if not response_started:
                await JSONResponse({"detail": "Internal server error"}, status_code=500)(
                    scope, receive, send_with_headers
                )
            raise


def _login_redirect_target(request: Request) -> str:
    """Where to come back after login: for htmx, the page the user was on, not the fragment."""
    current = request.headers.get("HX-Current-URL")
    if current:
        parts = urlsplit(current)
        if parts.netloc == request.url.netloc:
            return parts.path + (f"?{parts.query}" if parts.query else "")
    return request.url.path + (f"?{request.url.query}" if request.url.query else "")


def _not_authenticated(request: Request, _exc: Exception) -> Response:
    if wants_json(request):
        return JSONResponse(
            {"detail": "Not authenticated"},
            status_code=status.HTTP_401_UNAUTHORIZED,
            headers={"WWW-Authenticate": "Bearer"},
        )
    login_url = f"/login?next={quote(_login_redirect_target(request), safe='')}"
    if is_htmx(request):
        return Response(status_code=401, headers={"HX-Redirect": login_url})
    return RedirectResponse(login_url, status_code=status.HTTP_303_SEE_OTHER)


def _html_error(request: Request, status_code: int, message: str, headers: dict | None) -> Response:
    response = render_page(
        request,
        "errors/error.html",
        {"status_code": status_code, "message": message},
        block="error_message",
        status_code=status_code,
    )
    response.headers.update(headers or {})
    return response


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    if wants_json(request) or request.url.path.startswith("/static/"):
        return JSONResponse(
            {"detail": exc.detail}, status_code=exc.status_code, headers=exc.headers
        )
    return _html_error(request, exc.status_code, str(exc.detail), exc.headers)


async def _validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    errors = exc.errors()
    if wants_json(request):
        return JSONResponse(
            {"detail": [{k: e[k] for k in ("type", "loc", "msg") if k in e} for e in errors]},
            status_code=422,
        )
    message = "; ".join(
        f"{'.'.join(str(part) for part in e['loc'][1:])}: {e['msg']}" for e in errors
    )
    return _html_error(request, 422, message, None)


def seed_demo_mappings_if_tenant_exists(
    factory: sessionmaker[Session], settings: Settings
) -> None:
    with tenant_session(factory, None) as session:
        if demo_tenant(session) is not None:
            seed_demo_signal_mappings(session, settings)


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    if not settings.secret_key:
        raise RuntimeError("OPTRIA_SECRET_KEY is required outside demo mode")
    engine = create_db_engine(settings.database_url)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if getattr(app.state, "serving", False):
            # A second start would replace the hub and scanner while the first still run: the
            # first scanner's leadership lock would outlive its shutdown.
            raise RuntimeError("this app is already serving: start it once")
        if role_bypasses_rls(app.state.engine):
            raise RuntimeError(
                "refusing to serve: the database role bypasses row-level security "
                "(run `optria-iq migrate` so connections can SET ROLE optria_app)"
            )
        if settings.demo_mode:
            seed_demo_mappings_if_tenant_exists(app.state.session_factory, settings)
        app.state.invalidations = InvalidationListener(
            app.state.engine, [app.state.principals, app.state.signals]
        )
        app.state.invalidations.start()
        app.state.hub = LiveHub(
            interval=settings.stream_interval_seconds,
            sources=app.state.sources,
            check_credentials=partial(live_credentials, app.state.session_factory),
        )
        app.state.charts = LiveCharts(app.state.hub)
        app.state.blackbox = EventWriter(app.state.session_factory)
        app.state.blackbox.start()
        app.state.read_path = ReadPath(
            app.state.sources, app.state.signals, app.state.session_factory, app.state.blackbox
        )
        app.state.scanner = Scanner(
            session_factory=app.state.session_factory,
            hub=app.state.hub,
            interval=settings.alarm_scan_seconds or settings.stream_interval_seconds,
            leadership=Leadership(app.state.engine),
            health=HealthMonitor(app.state.session_factory, app.state.sources),
            health_interval=settings.health_interval_seconds,
        )
        app.state.scanner.start()
        app.state.serving = True
        # What exists now (modules, mappers, routes, templates) lives as long as the app: out of
        # the cycle collector's sight. Otherwise each full collection walks it again, and with
        # requests awaiting the BlackBox writer those come often: a third of the read path's
        # CPU under load (DESIGN.md §17). Undone at shutdown, so nothing stays frozen.
        gc.freeze()
        try:
            yield
        finally:
            gc.unfreeze()
            app.state.serving = False
            await app.state.scanner.aclose()
            await app.state.hub.aclose()
            # After the streams: their last reads' events are committed before the pool closes.
            await app.state.blackbox.aclose()
            app.state.charts.clear()
            await close_all_connectors()
            app.state.invalidations.stop()
            app.state.engine.dispose()

    app = FastAPI(
        title="OPTRIA IQ",
        version="0.1.0",
        description="Industrial Digital Twin API: assets, signals, time series, BlackBox.",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.engine = engine
    app.state.session_factory = create_session_factory(engine)
    app.state.sources = SourceAccess.from_settings(settings)
    # Who a credential is and what a signal maps to, for a few seconds (DESIGN.md §17).
    app.state.principals = TenantCache(Topic.principals)
    app.state.signals = TenantCache(Topic.signals)

    app.add_middleware(
        SessionMiddleware,
        secret_key=settings.secret_key,
        session_cookie="optria_session",
        max_age=settings.session_max_age_seconds,
        same_site="lax",
        # Secure cookie and HSTS outside demo mode; the demo runs on plain http://127.0.0.1.
        https_only=not settings.demo_mode,
    )
    app.add_middleware(SecurityHeadersMiddleware, hsts=not settings.demo_mode)
    app.add_middleware(ServerSendMiddleware)  # outermost: see its docstring

    app.add_exception_handler(NotAuthenticated, _not_authenticated)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)

    # Authentication checks the CSRF token of a cookie-authenticated unsafe request (deps.py).
    app.include_router(liveness)
    app.include_router(tenancy_views.router)
    app.include_router(tenancy_views.users_router)
    app.include_router(twin_views.router)
    app.include_router(asset_views.router)
    app.include_router(health_views.router)
    app.include_router(blackbox_views.router)
    app.include_router(integration_views.router)
    app.include_router(alarm_views.router)
    app.include_router(alarm_views.pages)
    app.include_router(trend_views.router)
    app.include_router(logbook_views.router)
    app.mount("/static", StaticFiles(directory=PROJECT_ROOT / "static"), name="static")

    @app.get("/", include_in_schema=False)
    def home() -> RedirectResponse:
        return RedirectResponse("/twins", status_code=status.HTTP_303_SEE_OTHER)

    @app.get("/docs", include_in_schema=False)
    def swagger_ui() -> HTMLResponse:
        # Vendored swagger-ui (air-gapped plants); its one init script is allowed by nonce.
        nonce = secrets.token_urlsafe(16)
        page = get_swagger_ui_html(
            openapi_url="/openapi.json",
            title="OPTRIA IQ API",
            swagger_js_url=f"{SWAGGER_DIR}/swagger-ui-bundle.js",
            swagger_css_url=f"{SWAGGER_DIR}/swagger-ui.css",
            swagger_favicon_url="/static/favicon.svg",
        )
        body = page.body.decode().replace("<script>", f'<script nonce="{nonce}">')
        return HTMLResponse(
            body,
            headers={
                "Content-Security-Policy": (
                    f"default-src 'self'; script-src 'self' 'nonce-{nonce}'; "
                    "style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
                    "connect-src 'self'; object-src 'none'; frame-ancestors 'none'"
                )
            },
        )

    return app
