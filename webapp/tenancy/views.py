"""Login and logout pages, and the OAuth2 password-form token endpoint for JSON clients."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, HTTPException, Path, Request, status
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.security import OAuth2PasswordRequestForm

from webapp.deps import (
    SESSION_KEY,
    AdminUser,
    CurrentUser,
    PublicSessionDep,
    SessionDep,
    SettingsDep,
    bearer_token,
    idle_timeout,
    verify_csrf,
)
from webapp.templating import SUPPORTED_LOCALES, render_page
from webapp.tenancy import service
from webapp.tenancy.models import Role
from webapp.tenancy.schemas import (
    TokenResponse,
    TokenRevoked,
    UserCreate,
    UserList,
    UserOut,
    UserUpdate,
)
from webapp.tenancy.service import (
    InvalidCredentials,
    LoginThrottled,
    authenticate,
    issue_api_token,
    revoke_api_token,
    revoke_session,
    set_locale,
    start_session,
)
from webapp.types import MAX_DB_ID

router = APIRouter()

INVALID_LOGIN = "Invalid email or password"


def safe_next(target: str | None) -> str:
    """Only same-origin paths: never an open redirect."""
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return "/twins"


def client_address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def _login_page(
    request: Request, *, next_url: str, error: str | None = None, email: str = "",
    status_code: int = 200, headers: dict[str, str] | None = None,
) -> HTMLResponse:
    lang = request.query_params.get("lang") or request.session.get("lang")
    if lang in SUPPORTED_LOCALES:
        request.session["lang"] = lang
        request.state.locale = lang
    response = render_page(
        request,
        "tenancy/login.html",
        {"next_url": next_url, "error": error, "email": email},
        status_code=status_code,
    )
    response.headers.update(headers or {})
    return response


@router.get("/login", response_class=HTMLResponse, include_in_schema=False)
def login_page(request: Request, next: str | None = None) -> HTMLResponse:
    return _login_page(request, next_url=safe_next(next))


@router.post("/login", include_in_schema=False)
def login_submit(
    request: Request,
    db: PublicSessionDep,
    settings: SettingsDep,
    email: Annotated[str, Form(max_length=254)] = "",
    password: Annotated[str, Form(max_length=1024)] = "",
    next: Annotated[str, Form()] = "/twins",
) -> Response:
    next_url = safe_next(next)
    if request.headers.get("Sec-Fetch-Site") == "cross-site":
        # Login CSRF: another site must not log this browser into an account of its choosing.
        raise HTTPException(status.HTTP_403_FORBIDDEN, "Cross-site login refused")
    try:
        user = authenticate(
            db, email=email, password=password, client_address=client_address(request)
        )
    except LoginThrottled as throttled:
        return _login_page(
            request, next_url=next_url, email=email, status_code=429,
            error="Too many failed attempts. Try again in a few minutes.",
            headers={"Retry-After": str(throttled.retry_after_seconds)},
        )
    except InvalidCredentials:
        return _login_page(
            request, next_url=next_url, email=email, status_code=401, error=INVALID_LOGIN
        )
    chosen_locale = request.session.get("lang")
    if chosen_locale in SUPPORTED_LOCALES:
        set_locale(db, user, chosen_locale)  # the language picked on the login page sticks
    old_session_id = request.session.get(SESSION_KEY)
    if old_session_id:
        revoke_session(db, old_session_id)
    request.session.clear()
    request.session[SESSION_KEY] = start_session(
        db, user, max_age_seconds=settings.session_max_age_seconds,
        idle_timeout=idle_timeout(settings),
    )
    return RedirectResponse(next_url, status_code=status.HTTP_303_SEE_OTHER)


@router.post("/logout", include_in_schema=False, dependencies=[Depends(verify_csrf)])
def logout(request: Request, db: PublicSessionDep) -> Response:
    session_id = request.session.get(SESSION_KEY)
    if session_id:
        # Even a deactivated user's session: reactivating them must not revive it.
        revoke_session(db, session_id)
    request.session.clear()
    return RedirectResponse("/login", status_code=status.HTTP_303_SEE_OTHER)


@router.post(
    "/api/auth/token",
    response_model=TokenResponse,
    tags=["auth"],
    responses={401: {"description": "Bad credentials"}, 429: {"description": "Throttled"}},
)
def issue_token(
    request: Request,
    form: Annotated[OAuth2PasswordRequestForm, Depends()],
    db: PublicSessionDep,
    settings: SettingsDep,
) -> TokenResponse:
    try:
        user = authenticate(
            db, email=form.username, password=form.password,
            client_address=client_address(request),
        )
    except LoginThrottled as throttled:
        raise HTTPException(
            status.HTTP_429_TOO_MANY_REQUESTS,
            "Too many failed login attempts; retry later",
            headers={"Retry-After": str(throttled.retry_after_seconds)},
        ) from None
    except InvalidCredentials:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED, INVALID_LOGIN, headers={"WWW-Authenticate": "Bearer"}
        ) from None
    max_age = settings.api_token_max_age_seconds
    token = issue_api_token(
        db, user, max_age_seconds=max_age, idle_timeout=idle_timeout(settings)
    )
    return TokenResponse(access_token=token, expires_in=max_age)


@router.post(
    "/api/auth/revoke",
    response_model=TokenRevoked,
    tags=["auth"],
    responses={400: {"description": "No bearer token presented"}},
)
def revoke_token(request: Request, db: SessionDep, user: CurrentUser) -> TokenRevoked:
    """Revoke the bearer token this request presents; it answers 401 from then on."""
    token = bearer_token(request)
    if token is None:
        raise HTTPException(
            status.HTTP_400_BAD_REQUEST,
            "Present the bearer token to revoke in the Authorization header "
            "(browser sessions end with POST /logout)",
        )
    revoke_api_token(db, token, actor_id=user.id)
    return TokenRevoked()


# --- users (tenant_admin) ----------------------------------------------------------------------

UserId = Annotated[int, Path(ge=1, le=MAX_DB_ID)]
users_router = APIRouter(prefix="/api/users", tags=["users"])


@users_router.get("", response_model=UserList)
def list_users(db: SessionDep, _admin: AdminUser) -> UserList:
    return UserList.model_validate({"users": service.list_users(db)}, from_attributes=True)


@users_router.post("", response_model=UserOut, status_code=201)
def create_user(data: UserCreate, db: SessionDep, admin: AdminUser) -> UserOut:
    try:
        user = service.create_user(
            db, tenant=admin.tenant, email=data.email, password=data.password,
            role=Role(data.role), actor_id=admin.id,
        )
    except service.DuplicateEmail as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from None
    db.commit()
    return UserOut.model_validate(user)


@users_router.patch("/{user_id}", response_model=UserOut)
def update_user(user_id: UserId, data: UserUpdate, db: SessionDep, admin: AdminUser) -> UserOut:
    """Role and active flag. Deactivating revokes the user's sessions and tokens: their
    requests answer 401 at once and their open streams end within two ticks."""
    try:
        user = service.update_user(
            db, user_id, actor=admin, role=None if data.role is None else Role(data.role),
            is_active=data.is_active,
        )
    except service.NotFound as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from None
    except service.SelfLockout as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from None
    return UserOut.model_validate(user)
