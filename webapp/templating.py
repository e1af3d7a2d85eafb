"""Jinja2 with blocks-as-fragments (jinja2-fragments), i18n, and the page-or-block choice.

`render_page` is the one place that decides between a whole page and one `{% block %}`:
htmx requests get the block, everything else (direct loads, history restores) the page.
"""

from __future__ import annotations

import contextvars
import functools
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime
from decimal import Decimal
from io import BytesIO
from typing import Any
from zoneinfo import ZoneInfo

from babel import Locale
from babel.dates import format_datetime as babel_format_datetime
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.numbers import format_decimal, get_decimal_symbol, get_group_symbol
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


@functools.lru_cache(maxsize=16)
def babel_locale(code: str) -> Locale:
    """Parsed once: Locale.parse on every formatted value was a tenth of a chart's render."""
    return Locale.parse(code)


NumberFormat = Callable[[float], str]
_NUMBER_PROBES = (0.0, -0.0, 2.675, -2.675, 0.005, 1234567.125, -98765.4321, 1e-7, 0.5, 1.5)


@functools.lru_cache(maxsize=64)
def number_format(locale: str, digits: int) -> NumberFormat:
    """Format with `digits` decimals as babel's `#,##0.00` does, about five times faster: the
    same decimal rounding (Decimal of the float's repr, half-even) through Python's own
    formatting, with the locale's group, decimal and minus symbols. Babel itself is used if
    the two ever disagree on the probes (a locale with other digits or grouping)."""
    parsed = babel_locale(locale)
    pattern = "#,##0." + "0" * digits if digits else "#,##0"

    def by_babel(value: float) -> str:
        return format_decimal(value, format=pattern, locale=parsed)

    symbols = str.maketrans({",": get_group_symbol(parsed), ".": get_decimal_symbol(parsed)})
    minus = by_babel(-1)[: -len(by_babel(1))]
    spec = f",.{digits}f"

    def by_python(value: float) -> str:
        text = format(Decimal(repr(value)), spec)
        if text.startswith("-"):
            return minus + text[1:].translate(symbols)
        return text.translate(symbols)

    same = all(by_python(value) == by_babel(value) for value in _NUMBER_PROBES)
    return by_python if same else by_babel


def format_number(value: float | None, digits: int = 2, locale: str | None = None) -> str:
    if value is None:
        return "—"
    return number_format(locale or _current_locale.get(), digits)(value)


TimeFormat = Callable[[datetime], str]
# Clock patterns whose digits Python writes as babel does (checked per locale on probes).
_CLOCK_SUFFIXES = ((" HH:mm:ss", "%H:%M:%S"), (" HH:mm", "%H:%M"))
_TIME_PROBES = tuple(
    datetime(2026, month, day, hour, minute, second, tzinfo=UTC)
    for month, day, hour, minute, second in ((1, 2, 0, 0, 0), (11, 29, 23, 59, 59),
                                             (6, 15, 9, 5, 7), (12, 31, 12, 30, 45))
)


@functools.lru_cache(maxsize=128)
def time_format(timezone: str, fmt: str, locale: str) -> TimeFormat:
    """Babel's `fmt` on the plant's clock, fast for a chart's table: a pattern ending in a
    24-hour clock formats each date once (babel) and the clock with strftime, when the
    two agree on the probes; otherwise babel for every value."""
    zone, parsed = ZoneInfo(timezone), babel_locale(locale)

    def by_babel(value: datetime) -> str:
        return babel_format_datetime(value, format=fmt, tzinfo=zone, locale=parsed)

    for suffix, clock in _CLOCK_SUFFIXES:
        if not fmt.endswith(suffix) or len(fmt) == len(suffix):
            continue
        date_pattern = fmt[: -len(suffix)]

        @functools.lru_cache(maxsize=32)
        def date_text(day: date, pattern: str = date_pattern) -> str:
            return babel_format_datetime(
                datetime(day.year, day.month, day.day, 12, tzinfo=zone), format=pattern,
                tzinfo=zone, locale=parsed,
            )

        def by_parts(value: datetime, clock: str = clock) -> str:
            local = value.astimezone(zone)
            return f"{date_text(local.date())} {local.strftime(clock)}"

        if all(by_parts(probe) == by_babel(probe) for probe in _TIME_PROBES):
            return by_parts
    return by_babel


def format_local_time(
    value: datetime | None, timezone: str = "UTC", fmt: str = "medium", locale: str | None = None
) -> str:
    """Times are shown in the plant's timezone, in the viewer's language."""
    if value is None:
        return "—"
    return time_format(timezone, fmt, locale or _current_locale.get())(value)


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
