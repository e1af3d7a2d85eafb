"""Short-lived caches of who a credential is and what a signal maps to (DESIGN.md §17), and how
they learn of changes.

On PostgreSQL, triggers (migration 0008) send `NOTIFY optria_invalidate, '<topic>:<tenant>'`
for every change to the rows the caches are read from — by the app, the CLI or an operator's
SQL — delivered at commit (never for a rolled-back change) to the `InvalidationListener` of
every process, which drops that tenant's entries within milliseconds. In the process that
commits, the ORM hooks below drop them at once, without waiting for the notification.

The caches fail closed: they answer only while their process's listener is connected (a
notification it could have missed would otherwise leave a revoked token working), so never on
SQLite, where another process's change could not be heard. Entries expire after `ttl`
whatever happens, and an entry read from the database while a change committed is not kept
(the generation check in `put`).
"""

from __future__ import annotations

import collections
import enum
import logging
import os
import select
import threading
import time
import weakref
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from sqlalchemy import Engine, event, inspect
from sqlalchemy.orm import ORMExecuteState, Session

from webapp.db import bound_tenant_id

logger = logging.getLogger(__name__)

CHANNEL = "optria_invalidate"
TRIGGER = "optria_announce_change"  # migration 0008's, on every table the caches read
PENDING_KEY = "optria_pending_invalidations"
DEFAULT_TTL_SECONDS = 5.0
MAX_ENTRIES = 50_000
RECONNECT_SECONDS = 1.0

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class Topic(enum.StrEnum):
    principals = "principals"  # users, browser sessions, API tokens, tenants
    signals = "signals"  # mappings, integrations, assets


@dataclass(slots=True)
class _Entry(Generic[V]):
    value: V
    tenant_id: int
    expires: float


class TenantCache(Generic[K, V]):
    """A dict with expiry whose entries belong to a tenant and are dropped per tenant."""

    def __init__(
        self, topic: Topic, *, ttl: float = DEFAULT_TTL_SECONDS, max_entries: int = MAX_ENTRIES,
        clock: Callable[[], float] = time.monotonic, trusted: bool = False,
    ) -> None:
        self.topic = topic
        self.ttl = ttl
        self._max_entries = max_entries
        self._clock = clock
        self._entries: dict[K, _Entry[V]] = {}
        self._generation = 0
        self._lock = threading.Lock()  # request threads and the listener change it alike
        # Set by the listener while it hears every change; until then the cache answers nothing.
        self.trusted = trusted
        _caches.add(self)

    @property
    def generation(self) -> int:
        """Take it before reading the database; hand it to `put`."""
        return self._generation

    def get(self, key: K) -> V | None:
        entry = self._entries.get(key)
        if entry is None or not self.trusted:
            return None
        if entry.expires <= self._clock():
            self._entries.pop(key, None)
            return None
        return entry.value

    def put(
        self, key: K, value: V, *, tenant_id: int, generation: int, until: float | None = None
    ) -> None:
        """Keep `value` (read when `generation` was current) for at most ttl seconds, or until
        the monotonic time `until` if sooner."""
        expires = self._clock() + self.ttl
        entry = _Entry(value, tenant_id, expires if until is None else min(expires, until))
        with self._lock:
            if generation != self._generation or not self.trusted:
                return  # a change committed while it was read: it may be stale already
            if len(self._entries) >= self._max_entries:
                self._entries.clear()  # a crude bound; a flood of keys only costs lookups
            self._entries[key] = entry

    def drop_tenant(self, tenant_id: int) -> None:
        with self._lock:
            self._generation += 1
            for key in [k for k, entry in self._entries.items() if entry.tenant_id == tenant_id]:
                del self._entries[key]

    def forget(self) -> None:
        self.set_trusted(self.trusted)

    def set_trusted(self, trusted: bool) -> None:
        """Forget everything; from now on answer only if `trusted`."""
        with self._lock:
            self._generation += 1
            self._entries.clear()
            self.trusted = trusted


_caches: weakref.WeakSet[TenantCache[object, object]] = weakref.WeakSet()


def clear_all_caches() -> None:
    """Forget every entry of every cache in this process (after the tables were emptied under
    the app, as tests do between cases)."""
    for cache in list(_caches):
        cache.forget()


def publish(topic: Topic, tenant_id: int) -> None:
    """Drop the tenant's entries from every cache of `topic` in this process."""
    for cache in list(_caches):
        if cache.topic is topic:
            cache.drop_tenant(tenant_id)


# --- announcing (in the changing transaction) --------------------------------------------------

# What each cache is read from (the same tables and columns as migration 0008's triggers). A
# change to one of these rows, by any ORM flush or ORM update/delete statement, is announced:
# no service has to remember to.
TOPIC_OF_TABLE = {
    "tenant": Topic.principals,
    "user": Topic.principals,
    "api_token": Topic.principals,
    "user_session": Topic.principals,
    "asset": Topic.signals,
    "tenant_integration": Topic.signals,
    "external_signal_mapping": Topic.signals,
}
# Columns whose change no cache depends on: a session's activity clock is written every
# minute of use and must not empty the tenant's caches each time.
UNCACHED_COLUMNS = {"user_session": frozenset({"last_seen_at"})}
# A new credential has no cache entry to go stale.
NEW_ROWS_IRRELEVANT = frozenset({"api_token", "user_session"})


def announce(session: Session, topic: Topic, tenant_id: int) -> None:
    """This process's caches drop the tenant's `topic` entries when this transaction commits
    (and not at all if it rolls back); other processes hear it from the database's trigger."""
    session.info.setdefault(PENDING_KEY, set()).add((topic, tenant_id))


def _row_tenant(table: str, row: object) -> int | None:
    return getattr(row, "id" if table == "tenant" else "tenant_id", None)


def _changes_cached_columns(table: str, row: object) -> bool:
    ignored = UNCACHED_COLUMNS.get(table)
    if not ignored:
        return True
    state = inspect(row)
    return any(
        attribute.history.has_changes()
        for attribute in state.attrs
        if attribute.key not in ignored
    )


@event.listens_for(Session, "after_flush")
def _announce_flushed_changes(session: Session, _context: object) -> None:
    changed: set[tuple[Topic, int]] = set()
    for rows, is_new in ((session.new, True), (session.dirty, False), (session.deleted, False)):
        for row in rows:
            table = getattr(getattr(row, "__table__", None), "name", None)
            topic = TOPIC_OF_TABLE.get(table or "")
            if topic is None or table is None:
                continue
            if is_new and table in NEW_ROWS_IRRELEVANT:
                continue
            if not is_new and row in session.dirty and not _changes_cached_columns(table, row):
                continue
            tenant_id = _row_tenant(table, row)
            if tenant_id is not None:
                changed.add((topic, tenant_id))
    for topic, tenant_id in changed:
        announce(session, topic, tenant_id)


@event.listens_for(Session, "do_orm_execute")
def _announce_bulk_changes(state: ORMExecuteState) -> None:
    """ORM update() and delete() statements (revoking every session of a user, say)."""
    if not (state.is_update or state.is_delete):
        return
    table = getattr(state.statement, "table", None)
    topic = TOPIC_OF_TABLE.get(getattr(table, "name", ""))
    if topic is None or table is None:
        return
    ignored = UNCACHED_COLUMNS.get(table.name, frozenset())
    if state.is_update and ignored:
        values = getattr(state.statement, "_values", None) or {}
        written = {getattr(column, "key", column) for column in values}
        if written and written <= ignored:
            return
    tenant_id = bound_tenant_id(state.session)
    if tenant_id is not None:  # unbound, the tenant scope lets the statement change no row
        announce(state.session, topic, tenant_id)


@event.listens_for(Session, "after_commit")
def _publish_committed(session: Session) -> None:
    for topic, tenant_id in session.info.pop(PENDING_KEY, ()):
        publish(topic, tenant_id)


@event.listens_for(Session, "after_soft_rollback")
def _forget_rolled_back(session: Session, _previous_transaction: object) -> None:
    session.info.pop(PENDING_KEY, None)


# --- listening (other processes' changes) -----------------------------------------------------


def parse_notification(payload: str) -> tuple[Topic, int] | None:
    """`topic:tenant_id` as migration 0008's triggers send it; anything else (a barrier, another
    sender) is not an announcement."""
    topic, _, tenant = payload.partition(":")
    try:
        return Topic(topic), int(tenant)
    except ValueError:
        return None


class InvalidationListener:
    """One thread per process: LISTENs on a connection of its own and publishes what other
    processes announce. While it is not listening, the caches are not trusted."""

    def __init__(self, engine: Engine, caches: Sequence[TenantCache[Any, Any]]) -> None:
        self.engine = engine
        self.caches = caches
        self._stop = threading.Event()
        # A stopping listener must never trust the caches again (its successor may be the
        # one that hears changes now): trusting and stopping take this lock.
        self._trust_lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self.listening = threading.Event()
        # Payloads that are not announcements (a barrier, see `wait_for`), newest last.
        self._other_payloads: collections.deque[str] = collections.deque(maxlen=64)
        self._heard = threading.Condition()
        # Written to by stop(): wakes the listening thread at once, not at its next timeout.
        self._wake_read, self._wake_write = os.pipe()

    @property
    def can_hear_changes(self) -> bool:
        """PostgreSQL announces every change; SQLite cannot tell us of another process's."""
        return self.engine.dialect.name == "postgresql"

    def start(self) -> None:
        self._trust(False)
        if not self.can_hear_changes:
            return
        self._thread = threading.Thread(target=self._run, name="cache-invalidation", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        with self._trust_lock:
            if self._stop.is_set():
                return  # stopped already
            self._stop.set()
            for cache in self.caches:
                cache.set_trusted(False)
        os.write(self._wake_write, b"x")
        if self._thread is not None:
            self._thread.join(timeout=5)
        os.close(self._wake_read)
        os.close(self._wake_write)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                if not self._listen():
                    return  # fail closed for the process's life: the caches stay untrusted
            except Exception:  # the link broke: distrust, then try again
                logger.warning("cache invalidation listener lost its connection", exc_info=True)
            self.listening.clear()
            self._trust(False)
            self._stop.wait(RECONNECT_SECONDS)

    def wait_for(self, payload: str, timeout: float) -> bool:
        """Whether `payload`, notified on CHANNEL after some commits, was heard within
        `timeout`: PostgreSQL delivers notifications in commit order, so every change
        committed before it has been applied to the caches by then."""
        with self._heard:
            return self._heard.wait_for(lambda: payload in self._other_payloads, timeout)

    def _apply(self, payload: str) -> None:
        parsed = parse_notification(payload)
        if parsed is not None:
            publish(*parsed)
            return
        with self._heard:
            self._other_payloads.append(payload)
            self._heard.notify_all()

    def _trust(self, trusted: bool) -> None:
        with self._trust_lock:
            if self._stop.is_set():
                return  # stop() distrusted them; they may be a successor's to trust now
            for cache in self.caches:
                cache.set_trusted(trusted)

    def _listen(self) -> bool:
        """Listen until stopped (True) or the link breaks (raises); False if the database
        does not announce changes at all."""
        pooled = self.engine.raw_connection()
        connection = pooled.driver_connection
        pooled.detach()  # held for the process's life: not the pool's to recycle
        try:
            connection.rollback()
            connection.autocommit = True
            with connection.cursor() as cursor:
                cursor.execute("SELECT 1 FROM pg_trigger WHERE tgname = %s LIMIT 1", (TRIGGER,))
                if cursor.fetchone() is None:
                    # Not migrated to 0008: other processes' changes would go unannounced.
                    logger.error(
                        "the database announces no changes (run `optria-iq migrate`): the "
                        "principal and signal caches stay off"
                    )
                    return False
                cursor.execute(f"LISTEN {CHANNEL}")
            # Listening from here on: what was cached before may have missed a change.
            self._trust(True)
            self.listening.set()
            while not self._stop.is_set():
                # First what the driver holds already (some may have come with LISTEN's answer).
                while connection.notifies:
                    self._apply(connection.notifies.pop(0).payload)
                readable, _, _ = select.select([connection, self._wake_read], [], [])
                if connection in readable:
                    connection.poll()
            return True
        finally:
            pooled.close()
