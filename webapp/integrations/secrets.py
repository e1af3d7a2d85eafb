"""Integration secrets: found by one walker, masked for people, sealed at rest (DESIGN.md §16).

A secret is a value under a secret-looking key (password, token, api_key…), the password in a
URL's userinfo, or a secret-looking URL query option (`?password=`). Everything that touches
secrets goes through `map_secrets`, so masking for responses and events, sealing for the
database and opening for a connector can never disagree about what a secret is.

Sealed values are `enc:v1:<Fernet token of the JSON value>`; Fernet is AES-128-CBC with an
HMAC-SHA256, from `cryptography`. The key comes from `OPTRIA_SECRETS_KEY` (comma-separated for
rotation: the first seals, all open), else it is derived from `OPTRIA_SECRET_KEY`.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit, urlunsplit

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from webapp.types import first_path

if TYPE_CHECKING:
    from webapp.config import Settings

SECRET_MASK = "***"
SEALED_PREFIX = "enc:v1:"
_SECRET_NAME = re.compile(
    r"password|passwd|pwd|secret|token|api_?key|private_?key|credential", re.IGNORECASE
)

Transform = Callable[[Any], Any]


class SecretUnreadable(ValueError):
    """A sealed secret that none of the configured keys opens (the key was changed or lost)."""


class SecretKeyMissing(RuntimeError):
    """A secret must be sealed or opened, and no key is configured."""


# --- the walker ------------------------------------------------------------------------------


def is_secret_name(name: object) -> bool:
    return isinstance(name, str) and bool(_SECRET_NAME.search(name))


def map_secrets(config: Mapping[str, Any], transform: Transform) -> dict[str, Any]:
    """A copy of `config` with `transform` applied to every secret in it, at any depth. URL
    parts are handed over as they are written (still percent-encoded) and must come back as
    text that fits there."""
    result: dict[str, Any] = {}
    for key, value in config.items():
        if is_secret_name(key) and value not in (None, ""):
            result[key] = transform(value)
        else:
            result[key] = _map_value(value, transform)
    return result


def _map_value(value: Any, transform: Transform) -> Any:
    if isinstance(value, Mapping):
        return map_secrets(value, transform)
    if isinstance(value, list):
        return [_map_value(item, transform) for item in value]
    if is_sealed(value):
        return transform(value)  # a URL sealed as a whole (see url_secrets)
    if isinstance(value, str) and "://" in value:
        found = url_secrets(value)
        return _with_url_secrets(value, {where: transform(raw) for where, raw in found.items()})
    return value


# Where a secret sits in a URL: the whole text, the userinfo password, or a query option
# (its name and which of the options with that name).
WHOLE_URL: tuple[str, ...] = ("url",)
USERINFO_PASSWORD: tuple[str, ...] = ("password",)
# The most permissive reading of "scheme://user:password@" there is: SQLAlchemy's (a password
# runs to the first "@", across "/", "?" and "#").
_LOOSE_USERINFO = re.compile(r"^[\w+.-]+://[^:/]*:(?P<password>[^@]*)@")


def url_secrets(text: str) -> dict[tuple[str, ...], str]:
    """The secrets in a URL by where they sit, as written (still percent-encoded). When the
    URL parsers disagree on where its password ends, all of the URL is the secret: each
    library that might read it would find the password somewhere else."""
    loose = _LOOSE_USERINFO.match(text)
    try:
        parts = urlsplit(text)
        password = parts.password
    except ValueError:
        return {WHOLE_URL: text} if loose else {}
    if loose and loose["password"] and loose["password"] != password:
        return {WHOLE_URL: text}
    found: dict[tuple[str, ...], str] = {}
    if password:
        found[USERINFO_PASSWORD] = password
    seen: dict[str, int] = {}
    for option in parts.query.split("&"):
        name, equals, value = option.partition("=")
        if equals and value and is_secret_name(unquote(name)):
            found[("option", name, str(seen.get(name, 0)))] = value
            seen[name] = seen.get(name, 0) + 1
    return found


def _with_url_secrets(text: str, replaced: dict[tuple[str, ...], str]) -> str:
    """`text` with the secrets at these places replaced; everything else kept verbatim (an
    IPv6 host's brackets, the order of the options)."""
    if not replaced:
        return text
    if WHOLE_URL in replaced:
        return replaced[WHOLE_URL]
    parts = urlsplit(text)
    netloc = parts.netloc
    if USERINFO_PASSWORD in replaced:
        userinfo, _, host = netloc.rpartition("@")
        netloc = f"{userinfo.partition(':')[0]}:{replaced[USERINFO_PASSWORD]}@{host}"
    options, seen = [], {}
    for option in parts.query.split("&"):
        name, equals, value = option.partition("=")
        where = ("option", name, str(seen.get(name, 0)))
        if equals and where in replaced:
            seen[name] = seen.get(name, 0) + 1
            option = f"{name}={replaced[where]}"
        elif equals and value and is_secret_name(unquote(name)):
            seen[name] = seen.get(name, 0) + 1
        options.append(option)
    return urlunsplit(parts._replace(netloc=netloc, query="&".join(options)))


# --- masking (responses, errors, events, logs) ------------------------------------------------


def mask_secrets(config: Mapping[str, Any]) -> dict[str, Any]:
    """Secrets never leave the server: each becomes ***, sealed or not."""
    return map_secrets(config, lambda _secret: SECRET_MASK)


def keep_masked_secrets(new: Mapping[str, Any], stored: Mapping[str, Any]) -> tuple[dict, bool]:
    """A client echoing *** (or a URL with `:***@`) back keeps the stored secret at that place.
    Returns the merged config and whether any stored secret was kept."""
    kept: list[bool] = []
    merged = _keep_mapping(new, stored, kept)
    return merged, bool(kept)


def _keep_mapping(new: Mapping[str, Any], stored: Mapping[str, Any], kept: list[bool]) -> dict:
    merged: dict[str, Any] = {}
    for key, value in new.items():
        old = stored.get(key)
        if value == SECRET_MASK and key in stored and old not in (None, ""):
            merged[key] = old
            kept.append(True)
        else:
            merged[key] = _keep_value(value, old, kept)
    return merged


def _keep_value(value: Any, old: Any, kept: list[bool]) -> Any:
    if isinstance(value, Mapping) and isinstance(old, Mapping):
        return _keep_mapping(value, old, kept)
    if isinstance(value, list) and isinstance(old, list) and len(value) == len(old):
        return [_keep_value(v, o, kept) for v, o in zip(value, old, strict=True)]
    if isinstance(value, str) and isinstance(old, str) and "://" in value:
        # A *** keeps the stored secret of the same place only: a password stays a password
        # (never moved into a query option), an option keeps its own name.
        stored = url_secrets(old)
        restored = {
            where: stored[where]
            for where, secret in url_secrets(value).items()
            if secret == SECRET_MASK and where in stored
        }
        kept.extend(True for _ in restored)
        return _with_url_secrets(value, restored)
    return value


def leftover_mask(config: Mapping[str, Any]) -> str | None:
    """The first place where a *** would be stored as if it were the secret, or None."""
    return first_path(config, _is_mask)


def _is_mask(value: Any) -> bool:
    return value == SECRET_MASK or (
        isinstance(value, str) and "://" in value and SECRET_MASK in url_secrets(value).values()
    )


def sealed_value_at(config: Mapping[str, Any]) -> str | None:
    """Where a config from a client holds a sealed value (anything but what this server seals
    itself); None if nowhere. Opening one for whoever sent it would be a decryption service."""
    return first_path(config, lambda value: isinstance(value, str) and SEALED_PREFIX in value)


# --- sealing at rest -------------------------------------------------------------------------


class SecretVault:
    """Seals secrets for the database and opens them for a connector."""

    def __init__(self, keys: Sequence[str]) -> None:
        # Derived on first use: configs without secrets (the demo source) need no key at all.
        self._material = [key for key in keys if key]
        self._cipher: MultiFernet | None = None

    @property
    def _fernet(self) -> MultiFernet:
        if self._cipher is None:
            if not self._material:
                raise SecretKeyMissing(
                    "integration secrets need a key: set OPTRIA_SECRETS_KEY or OPTRIA_SECRET_KEY"
                )
            self._cipher = MultiFernet([Fernet(_derive_key(key)) for key in self._material])
        return self._cipher

    @classmethod
    def from_settings(cls, settings: Settings) -> SecretVault:
        rotation = [key.strip() for key in settings.secrets_key.split(",") if key.strip()]
        return cls([*rotation, settings.secret_key])

    def seal(self, config: Mapping[str, Any]) -> dict[str, Any]:
        """`config` as it may be stored: every secret sealed (sealed ones are kept as they are)."""
        return map_secrets(config, self._seal_value)

    def reveal(self, stored: Mapping[str, Any]) -> dict[str, Any]:
        """The config a connector needs, every sealed secret opened. Values stored before
        sealing existed pass through (the migration seals them)."""
        return map_secrets(stored, self._open_value)

    def _seal_value(self, value: Any) -> str:
        if is_sealed(value):
            return value
        token = self._fernet.encrypt(json.dumps(value).encode()).decode("ascii")
        return SEALED_PREFIX + token

    def _open_value(self, value: Any) -> Any:
        if not is_sealed(value):
            return value
        try:
            return json.loads(self._fernet.decrypt(value[len(SEALED_PREFIX) :].encode()))
        except InvalidToken:
            raise SecretUnreadable(
                "a stored integration secret cannot be decrypted with the configured keys "
                "(was OPTRIA_SECRETS_KEY or OPTRIA_SECRET_KEY changed?); re-enter it"
            ) from None


def is_sealed(value: Any) -> bool:
    return isinstance(value, str) and value.startswith(SEALED_PREFIX)


def _derive_key(material: str) -> bytes:
    """A Fernet key from any passphrase: HKDF-SHA256 with a purpose label, so the session
    secret and the secrets key never coincide even when one passphrase feeds both."""
    hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"optria-iq secrets v1")
    return base64.urlsafe_b64encode(hkdf.derive(material.encode()))
