"""Jinja2 with blocks-as-fragments (jinja2-fragments), i18n, and the page-or-block choice.

`render_page` is the one place that decides between a whole page and one `{% block %}`:
htmx requests get the block, everything else (direct loads, history restores) the page.
"""

from __future__ import annotations

import contextvars
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from io import BytesIO
from typing import Any
from zoneinfo import ZoneInfo

from babel.dates import format_datetime as babel_format_datetime
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.numbers import format_decimal
from babel.support import NullTranslations, Translations
from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape
from jinja2_fragments.fastapi import Jinja2Blocks

from webapp.config import PROJECT_ROOT

SUPPORTED_LOCALES = ("en", "ar")
RTL_LOCALES = frozenset({"ar"})
TRANSLATIONS_DIR = PROJECT_ROOT / "translations"

_current_locale: contextvars.ContextVar[str] = contextvars.ContextVar("locale", default="en")


def _load_translations() -> dict[str, NullTranslations]:
    """Compile the .po catalogs in memory at import: no build step, no binary files in git."""
    loaded: dict[str, NullTranslations] = {"en": NullTranslations()}
    for locale in SUPPORTED_LOCALES:
        po_file = TRANSLATIONS_DIR / locale / "LC_MESSAGES" / "messages.po"
        if not po_file.exists():
            continue
        with po_file.open("rb") as handle:
            catalog = read_po(handle, locale=locale)
        compiled = BytesIO()
        write_mo(compiled, catalog)
        compiled.seek(0)
        loaded[locale] = Translations(fp=compiled)
    return loaded


_TRANSLATIONS = _load_translations()


def translations() -> NullTranslations:
    return _TRANSLATIONS.get(_current_locale.get(), _TRANSLATIONS["en"])


def gettext(message: str) -> str:
    return translations().gettext(message)


def ngettext(singular: str, plural: str, n: int) -> str:
    return translations().ngettext(singular, plural, n)


def text_direction(locale: str) -> str:
    return "rtl" if locale in RTL_LOCALES else "ltr"


def format_number(value: float | None, digits: int = 2, locale: str | None = None) -> str:
    if value is None:
        return "—"
    pattern = "#,##0." + "0" * digits if digits else "#,##0"
    return format_decimal(value, format=pattern, locale=locale or _current_locale.get())


def format_local_time(
    value: datetime | None, timezone: str = "UTC", fmt: str = "medium", locale: str | None = None
) -> str:
    """Times are shown in the plant's timezone, in the viewer's language."""
    if value is None:
        return "—"
    return babel_format_datetime(
        value, format=fmt, tzinfo=ZoneInfo(timezone), locale=locale or _current_locale.get()
    )


def iso_utc(value: datetime | None) -> str:
    return "" if value is None else value.strftime("%Y-%m-%dT%H:%M:%SZ")


_environment = Environment(
    loader=FileSystemLoader([PROJECT_ROOT / "templates", PROJECT_ROOT / "partials"]),
    autoescape=select_autoescape(["html", "svg"]),
    extensions=["jinja2.ext.i18n"],
    trim_blocks=True,
    lstrip_blocks=True,
)
_environment.install_gettext_callables(gettext=gettext, ngettext=ngettext, newstyle=True)  # type: ignore[attr-defined]
_environment.filters.update(number=format_number, local_time=format_local_time, iso_utc=iso_utc)
_environment.globals.update(text_direction=text_direction)
templates = Jinja2Blocks(env=_environment)


@contextmanager
def in_locale(locale: str) -> Iterator[None]:
    """gettext and the formatters speak `locale` inside (outside a rendered page)."""
    token = _current_locale.set(locale)
    try:
        yield
    finally:
        _current_locale.reset(token)


def render_partial(template: str, context: dict[str, Any], *, locale: str) -> str:
    """An SSE payload rendered outside any request, in the viewer's language."""
    with in_locale(locale):
        return _environment.get_template(template).render(
            {"locale": locale, "direction": text_direction(locale), **context}
        )


def is_htmx(request: Request) -> bool:
    return (
        request.headers.get("HX-Request") == "true"
        and request.headers.get("HX-History-Restore-Request") != "true"
    )


def render_page(
    request: Request,
    template: str,
    context: dict[str, Any],
    *,
    block: str | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    """The whole page, or only `block` for htmx. The two cannot drift: same template text."""
    locale = getattr(request.state, "locale", "en")
    _current_locale.set(locale)
    user = getattr(request.state, "user", None)
    full_context = {
        "request": request,
        "user": user,
        "tenant": user.tenant if user is not None else None,
        "locale": locale,
        "direction": text_direction(locale),
        "csrf_token": getattr(request.state, "csrf_token", ""),
        **context,
    }
    kwargs: dict[str, Any] = {}
    if block and is_htmx(request):
        kwargs["block_name"] = block
    response = templates.TemplateResponse(
        request, template, full_context, status_code=status_code, **kwargs
    )
    response.headers["Vary"] = "HX-Request"
    return response
