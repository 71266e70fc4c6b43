"""Stands in for Eventarc's Firestore triggers: listens to the emulator and delivers each
document change to the functions whose path pattern and event (`written`: any change;
`created`: a new document) match it, as the `google.cloud.firestore.document.v1.*` CloudEvent
Eventarc sends (binary content mode, protobuf `DocumentEventData` with `value`, `old_value` and
`update_mask`).

The emulator has no Eventarc, so one collection-group listener per collection id named in
`deploy.FIRESTORE_FUNCTIONS` watches every write and filters to the documents the pattern
matches. A delivery the function answers with an error is retried with back-off a bounded
number of times, as `--retry` makes Eventarc do. Two differences from Eventarc: a listener
may fold writes that land within moments of each other into one change (the functions read
the document's current state, so nothing depends on seeing each write), and events are lost
if this process stops (Eventarc keeps them).
"""

from __future__ import annotations

import logging
import threading
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from google.events.cloud.firestore_v1 import ArrayValue, Document, DocumentEventData, DocumentMask, MapValue, Value

from cachebash.services.events import DocumentEvent, DocumentTrigger

log = logging.getLogger(__name__)

EVENT_TYPE = "google.cloud.firestore.document.v1.written"
DATABASE = "(default)"
LISTEN_TIMEOUT = 60.0


@dataclass(frozen=True)
class Trigger:
    """A Firestore-triggered function: its name, its document path pattern, its URL, and the
    event it fires on (`written`: every change; `created`: a document's creation only)."""

    function: str
    pattern: str  # e.g. tenants/{tenant}/answers/{question}
    url: str
    event: DocumentEvent = "written"

    @property
    def collection_id(self) -> str:
        """The collection the pattern's documents are in: what a collection-group listener needs."""
        return self.pattern.split("/")[-2]

    @property
    def event_type(self) -> str:
        return self.document.event_type

    @property
    def document(self) -> DocumentTrigger:
        return DocumentTrigger(self.function, self.pattern, self.event)

    def matches(self, path: str, *, created: bool = True) -> bool:
        """Whether a change of the document at `path` fires it (`created`: the document is new)."""
        return self.document.matches(path, created)


@dataclass(frozen=True)
class Retry:
    """How many times a failed delivery is tried, and the back-off between tries."""

    attempts: int = 6
    first_delay: float = 0.5
    max_delay: float = 8.0

    def delay(self, attempt: int) -> float:
        return min(self.first_delay * 2.0 ** (attempt - 1), self.max_delay)


def encode_value(value: Any, project: str) -> Value:
    """A Python value as read from Firestore, as the event's protobuf `Value`."""
    if value is None:
        return Value(null_value=0)
    if isinstance(value, bool):
        return Value(boolean_value=value)
    if isinstance(value, int):
        return Value(integer_value=value)
    if isinstance(value, float):
        return Value(double_value=value)
    if isinstance(value, str):
        return Value(string_value=value)
    if isinstance(value, bytes):
        return Value(bytes_value=value)
    if isinstance(value, datetime):
        return Value(timestamp_value=value)
    if isinstance(value, dict):
        return Value(map_value=MapValue(fields=encode_fields(value, project)))
    if isinstance(value, list | tuple):
        return Value(array_value=ArrayValue(values=[encode_value(v, project) for v in value]))
    if hasattr(value, "latitude") and hasattr(value, "longitude"):
        return Value(geo_point_value={"latitude": value.latitude, "longitude": value.longitude})
    if hasattr(value, "path") and hasattr(value, "id"):  # a DocumentReference
        return Value(reference_value=document_name(project, value.path))
    raise TypeError(f"cannot encode a {type(value).__name__} as a Firestore value")


def encode_fields(data: Mapping[str, Any], project: str) -> dict[str, Value]:
    return {key: encode_value(value, project) for key, value in data.items()}


def document_name(project: str, path: str) -> str:
    return f"projects/{project}/databases/{DATABASE}/documents/{path}"


def event_document(snapshot: Any, project: str) -> Document:
    """A listener's DocumentSnapshot as the event's protobuf `Document`."""
    return Document(name=document_name(project, snapshot.reference.path),
                    fields=encode_fields(snapshot.to_dict() or {}, project),
                    create_time=snapshot.create_time, update_time=snapshot.update_time)


def written_event(project: str, path: str, new: Document | None, old: Document | None,
                  event_type: str = EVENT_TYPE) -> tuple[dict[str, str], bytes]:
    """Headers and body of the CloudEvent (`event_type`: written, created...) for one change of
    the document at `path`."""
    data = DocumentEventData(value=new, old_value=old)
    if new is not None and old is not None:
        changed = sorted(k for k in {*new.fields, *old.fields}
                         if k not in new.fields or k not in old.fields or new.fields[k] != old.fields[k])
        data.update_mask = DocumentMask(field_paths=changed)
    current = new if new is not None else old
    when = current.update_time if current is not None else None
    stamp = (when if isinstance(when, datetime) else datetime.now(UTC)).isoformat().replace("+00:00", "Z")
    headers = {
        "ce-id": uuid.uuid4().hex, "ce-specversion": "1.0", "ce-type": event_type,
        "ce-source": f"//firestore.googleapis.com/projects/{project}/databases/{DATABASE}",
        "ce-subject": f"documents/{path}", "ce-time": stamp, "ce-database": DATABASE, "ce-namespace": "(default)",
        "ce-document": path, "ce-project": project, "ce-location": "local",
        "Content-Type": "application/protobuf",
    }
    return headers, DocumentEventData.serialize(data)


class FirestoreRelay:
    """Listens to the emulator and delivers matching changes to `triggers` on worker threads."""

    def __init__(self, project: str, triggers: Iterable[Trigger], retry: Retry | None = None,
                 workers: int = 8) -> None:
        self.project = project
        self.triggers = list(triggers)
        self.retry = retry or Retry()
        self.delivered = 0
        self.failed = 0
        self._last: dict[str, Document] = {}
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="cloud-local-relay")
        self._watches: list[Any] = []
        self._client: Any = None
        self._stopping = threading.Event()

    def start(self) -> FirestoreRelay:
        """Listen to each collection id; return once every listener has its first snapshot
        (what exists already is remembered, as `old_value` for its next change, not delivered)."""
        from google.auth.credentials import AnonymousCredentials
        from google.cloud import firestore

        self._client = firestore.Client(project=self.project,
                                        credentials=AnonymousCredentials())  # type: ignore[no-untyped-call]
        for collection_id in sorted({t.collection_id for t in self.triggers}):
            first = threading.Event()
            callback = self._listener(collection_id, first)
            self._watches.append(self._client.collection_group(collection_id).on_snapshot(callback))
            if not first.wait(LISTEN_TIMEOUT):
                raise RuntimeError(f"no first snapshot from the Firestore listener on '{collection_id}'")
        return self

    def stop(self) -> None:
        """Stop listening and drop what is queued. Deliveries in flight are not waited for: the
        functions stop next, and a stopping relay retries nothing (Eventarc would keep them)."""
        self._stopping.set()
        for watch in self._watches:
            watch.unsubscribe()
        self._pool.shutdown(wait=False, cancel_futures=True)
        if self._client is not None:
            self._client.close()

    def _listener(self, collection_id: str, first: threading.Event) -> Any:
        def on_snapshot(docs: list[Any], changes: list[Any], read_time: Any) -> None:
            initial = not first.is_set()
            for change in changes:
                self._changed(change, deliver=not initial)
            first.set()

        return on_snapshot

    def _changed(self, change: Any, *, deliver: bool) -> None:
        path = str(change.document.reference.path)
        removed = change.type.name == "REMOVED"
        new = None if removed else event_document(change.document, self.project)
        with self._lock:
            old = self._last.pop(path, None) if removed else self._last.get(path)
            if new is not None:
                self._last[path] = new
        if not deliver:
            return
        created = new is not None and old is None
        for trigger in self.triggers:
            if trigger.matches(path, created=created) and not self._stopping.is_set():
                headers, body = written_event(self.project, path, new, old, trigger.event_type)
                self._pool.submit(self._deliver, trigger, path, headers, body)

    def _deliver(self, trigger: Trigger, path: str, headers: dict[str, str], body: bytes) -> None:
        for attempt in range(1, self.retry.attempts + 1):
            problem = post(trigger.url, headers, body)
            if problem is None:
                with self._lock:
                    self.delivered += 1
                log.info("relay: %s <- %s", trigger.function, path)
                return
            if attempt == self.retry.attempts or self._stopping.is_set():
                break
            log.warning("%s for %s: %s; retrying (attempt %d of %d)", trigger.function, path, problem,
                        attempt + 1, self.retry.attempts)
            if self._stopping.wait(self.retry.delay(attempt)):
                break
        with self._lock:
            self.failed += 1
        log.error("%s for %s: gave up after %d attempts (event %s)", trigger.function, path, self.retry.attempts,
                  headers["ce-id"])


def post(url: str, headers: dict[str, str], body: bytes, timeout: float = 60) -> str | None:
    """POST one event; None when the function acknowledged it (2xx), else what went wrong."""
    request = urllib.request.Request(f"{url}/", data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as reply:
            reply.read()
            return None
    except urllib.error.HTTPError as exc:
        return f"HTTP {exc.code} {exc.read()[:200].decode(errors='replace')!r}"
    except OSError as exc:
        return repr(exc)
