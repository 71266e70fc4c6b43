"""What firestore.rules lets the mobile app (a signed-in Firebase user) do, against Google's emulator.

The emulator enforces rules loaded through its `:securityRules` endpoint for requests that
carry a user's ID token (unsigned ones are accepted, as with Firebase's own rules-unit-testing),
and lets `Bearer owner` (the server's role) bypass them to seed data. The stand-in has no rules
engine, so without Google's emulator these tests are skipped with that reason.
"""

from __future__ import annotations

import base64
import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from support.backends import Emulators
from support.rules_file import RULES


def _value(value: Any) -> dict[str, Any]:
    if value is None:
        return {"nullValue": None}
    if isinstance(value, bool):
        return {"booleanValue": value}
    if isinstance(value, int):
        return {"integerValue": str(value)}
    if isinstance(value, float):
        return {"doubleValue": value}
    if isinstance(value, str):
        return {"stringValue": value}
    if isinstance(value, list):
        return {"arrayValue": {"values": [_value(v) for v in value]}}
    return {"mapValue": {"fields": {k: _value(v) for k, v in value.items()}}}


def id_token(project: str, uid: str) -> str:
    """An unsigned Firebase ID token, which only the emulator accepts."""
    def part(data: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")

    now = int(time.time())
    claims = {"iss": f"https://securetoken.google.com/{project}", "aud": project, "iat": now, "exp": now + 3600,
              "auth_time": now, "sub": uid, "user_id": uid, "firebase": {"sign_in_provider": "custom"}}
    return f"{part({'alg': 'none', 'typ': 'JWT'})}.{part(claims)}."


class Firestore:
    """The REST API of one emulator project, as the server (`owner`) or as a signed-in user."""

    def __init__(self, http: httpx.Client, project: str, token: str) -> None:
        self.http, self.project, self.token = http, project, token
        self.base = f"/v1/projects/{project}/databases/(default)/documents"

    def as_user(self, uid: str | None) -> Firestore:
        return Firestore(self.http, self.project, id_token(self.project, uid) if uid else "")

    def _call(self, method: str, path: str, **kwargs: Any) -> int:
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        return self.http.request(method, f"{self.base}/{path}", headers=headers, **kwargs).status_code

    def get(self, path: str) -> int:
        return self._call("GET", path)

    def create(self, path: str, data: dict[str, Any]) -> int:
        return self._call("PATCH", path, params={"currentDocument.exists": "false"},
                          json={"fields": {k: _value(v) for k, v in data.items()}})

    def update(self, path: str, fields: dict[str, Any]) -> int:
        params = [("currentDocument.exists", "true"), *(("updateMask.fieldPaths", f) for f in fields)]
        return self._call("PATCH", path, params=params, json={"fields": {k: _value(v) for k, v in fields.items()}})

    def delete(self, path: str) -> int:
        return self._call("DELETE", path)

    def write_all(self, docs: dict[str, dict[str, Any]]) -> int:
        """Create many documents in one commit (the server's way to seed a tenant)."""
        root = self.base.removeprefix("/v1/")
        writes = [{"update": {"name": f"{root}/{path}", "fields": {k: _value(v) for k, v in data.items()}},
                   "currentDocument": {"exists": False}} for path, data in docs.items()]
        headers = {"Authorization": f"Bearer {self.token}"}
        return self.http.post(f"{self.base}:commit", json={"writes": writes}, headers=headers).status_code


@pytest.fixture(scope="module")
def server(emulators: Emulators) -> Iterator[Firestore]:
    google = emulators.get("firestore-google")
    project = "demo-rules-" + uuid.uuid4().hex[:8]
    with httpx.Client(base_url=f"http://{google.host}", timeout=10) as http:
        loaded = http.put(f"/emulator/v1/projects/{project}:securityRules",
                          json={"rules": {"files": [{"name": "firestore.rules", "content": RULES.read_text()}]}})
        assert loaded.status_code == 200, loaded.text
        yield Firestore(http, project, "owner")


@pytest.fixture
def uid() -> str:
    return "u" + uuid.uuid4().hex[:10]


OK, DENIED, EXISTS = 200, 403, 409


def seed(server: Firestore, uid: str) -> None:
    t = f"tenants/{uid}"
    docs: dict[str, dict[str, Any]] = {
        t: {"tenantId": uid},
        f"{t}/tasks/plain": {"type": "task", "target": "builder", "status": "created", "title": "x"},
        f"{t}/tasks/question": {"type": "question", "target": "human", "status": "created", "title": "ok?"},
        f"{t}/tasks/answered": {"type": "question", "target": "human", "status": "completed", "answeredAt": "t0",
                                "answer": "yes"},
        f"{t}/tasks/for_agent": {"type": "question", "target": "builder", "status": "created"},
        f"{t}/tasks/closed": {"type": "question", "target": "human", "status": "cancelled"},
        f"{t}/messages/query": {"message_type": "QUERY", "target": "human", "source": "builder", "message": "?"},
        f"{t}/messages/directive": {"message_type": "DIRECTIVE", "target": "human", "message": "do"},
        f"{t}/messages/answered_query": {"message_type": "QUERY", "target": "human", "message": "?",
                                         "answeredAt": "t0"},
        f"{t}/messages/to_agent": {"message_type": "QUERY", "target": "builder", "message": "?"},
        f"{t}/multicasts/m1": {"group": "builders"},
        f"{t}/sprints/s1": {"status": "active"},
        f"{t}/sprints/s1/stories/st1": {"storyId": "st1"},
        f"{t}/programs/builder": {"programId": "builder"},
        f"{t}/program_state/builder": {"programId": "builder"},
        f"{t}/sessions/sess1": {"programId": "builder"},
        f"{t}/devices/phone": {"token": "fcm-1", "platform": "ios"},
        f"{t}/idempotency/h1": {"response": {}},
        f"{t}/push_log/l1": {"status": "sent"},
        f"{t}/push_usage/h1": {"count": 1},
        f"{t}/settings/plan": {"name": "free", "overrides": {}},
        f"{t}/quota/2026-01": {"tasks": 1},
        f"{t}/usage/2026-01-01-builder-0": {"day": "2026-01-01", "program": "builder"},
        f"keys/hash-of-{uid}": {"tenantId": uid, "programId": "builder", "active": True},
    }
    assert server.write_all(docs) == OK


@pytest.fixture
def owner(server: Firestore, uid: str) -> Firestore:
    seed(server, uid)
    return server.as_user(uid)


READABLE = ["tasks/plain", "messages/query", "multicasts/m1", "sprints/s1", "sprints/s1/stories/st1",
            "programs/builder", "program_state/builder", "sessions/sess1"]
SERVER_ONLY = ["idempotency/h1", "push_log/l1", "push_usage/h1", "devices/phone", "settings/plan", "quota/2026-01",
               "usage/2026-01-01-builder-0"]


def test_owner_reads_the_tenants_coordination_data(owner: Firestore, uid: str) -> None:
    assert {doc: owner.get(f"tenants/{uid}/{doc}") for doc in READABLE} == dict.fromkeys(READABLE, OK)
    for collection in ("tasks", "messages", "sprints", "sprints/s1/stories", "program_state", "sessions"):
        assert owner.get(f"tenants/{uid}/{collection}") == OK, f"list {collection}"


def test_nobody_else_reads_it(server: Firestore, owner: Firestore, uid: str) -> None:
    for stranger in (server.as_user("someone-else"), server.as_user(None)):
        assert {doc: stranger.get(f"tenants/{uid}/{doc}") for doc in READABLE} == dict.fromkeys(READABLE, DENIED)
        assert stranger.get(f"tenants/{uid}/tasks") == DENIED


def test_owner_never_touches_keys_or_server_bookkeeping(owner: Firestore, uid: str) -> None:
    assert owner.get(f"keys/hash-of-{uid}") == DENIED, "not even keys of the owner's own tenant"
    assert owner.get("keys") == DENIED
    assert owner.create(f"keys/forged-{uid}", {"tenantId": uid, "programId": "x", "admin": True}) == DENIED
    assert owner.update(f"keys/hash-of-{uid}", {"active": False}) == DENIED
    assert owner.get(f"tenants/{uid}") == DENIED
    assert {doc: owner.get(f"tenants/{uid}/{doc}") for doc in SERVER_ONLY} == dict.fromkeys(SERVER_ONLY, DENIED)


def test_owner_writes_no_coordination_data(owner: Firestore, uid: str) -> None:
    t = f"tenants/{uid}"
    assert owner.create(f"{t}/tasks/new", {"type": "task", "target": "builder", "status": "created"}) == DENIED
    assert owner.update(f"{t}/tasks/plain", {"status": "completed"}) == DENIED
    assert owner.delete(f"{t}/tasks/plain") == DENIED
    assert owner.create(f"{t}/messages/new", {"target": "builder", "message": "hi"}) == DENIED
    assert owner.update(f"{t}/program_state/builder", {"contextSummary": {}}) == DENIED
    assert owner.update(f"{t}/sprints/s1", {"status": "done"}) == DENIED


ANSWER = {"answer": "Yes, ship it.", "answeredAt": "2026-01-01T00:00:00.000Z"}


def test_owner_answers_a_question_addressed_to_the_human(owner: Firestore, uid: str) -> None:
    assert owner.create(f"tenants/{uid}/answers/question", ANSWER) == OK
    assert owner.create(f"tenants/{uid}/answers/query", ANSWER) == OK
    assert owner.get(f"tenants/{uid}/answers/query") == OK, "the app sees its answer until it is applied"


def test_one_answer_per_question_never_changed(owner: Firestore, uid: str) -> None:
    assert owner.create(f"tenants/{uid}/answers/query", ANSWER) == OK
    assert owner.create(f"tenants/{uid}/answers/query", {**ANSWER, "answer": "No"}) == EXISTS, "the first stands"
    assert owner.update(f"tenants/{uid}/answers/query", {"answer": "No"}) == DENIED
    assert owner.delete(f"tenants/{uid}/answers/query") == DENIED


def test_the_old_direct_answer_onto_a_question_is_refused(owner: Firestore, uid: str) -> None:
    """What an app from before the answers collection gets: PERMISSION_DENIED, not a lost answer."""
    assert owner.update(f"tenants/{uid}/tasks/question", ANSWER) == DENIED
    assert owner.update(f"tenants/{uid}/messages/query", ANSWER) == DENIED


@pytest.mark.parametrize(("question", "fields"), [
    ("question", {**ANSWER, "status": "completed"}),  # other fields
    ("question", {**ANSWER, "answerMessageId": "forged"}),
    ("question", {"answer": "yes"}),  # half an answer
    ("question", {"answer": "", "answeredAt": "t"}),
    ("question", {"answer": 42, "answeredAt": "t"}),
    ("question", {"answer": "y" * 20_001, "answeredAt": "t"}),
    ("question", {"answer": "yes", "answeredAt": "t" * 41}),
    ("answered", ANSWER),  # a task answered already
    ("closed", ANSWER),  # no longer open
    ("for_agent", ANSWER),  # not addressed to the human
    ("plain", ANSWER),  # not a question
    ("directive", ANSWER),  # not a question
    ("to_agent", ANSWER),  # a QUERY to an agent
    ("no_such_item", ANSWER),
])
def test_an_answer_is_only_the_answer_to_an_open_question(owner: Firestore, uid: str, question: str,
                                                          fields: dict[str, Any]) -> None:
    assert owner.create(f"tenants/{uid}/answers/{question}", fields) == DENIED


def test_a_message_answered_already_takes_no_answer(owner: Firestore, uid: str) -> None:
    assert owner.create(f"tenants/{uid}/answers/answered_query", ANSWER) == DENIED


def test_nobody_answers_another_tenants_question(server: Firestore, owner: Firestore, uid: str) -> None:
    for stranger in (server.as_user("someone-else"), server.as_user(None)):
        assert stranger.create(f"tenants/{uid}/answers/question", ANSWER) == DENIED
    assert owner.create(f"tenants/{uid}/answers/question", ANSWER) == OK
    assert server.as_user("someone-else").get(f"tenants/{uid}/answers/question") == DENIED


def test_owner_registers_and_removes_own_devices(server: Firestore, owner: Firestore, uid: str) -> None:
    devices = f"tenants/{uid}/devices"
    assert owner.create(f"{devices}/tablet", {"token": "fcm-2", "platform": "android", "label": "Tab"}) == OK
    assert owner.update(f"{devices}/tablet", {"token": "fcm-3"}) == OK, "a refreshed token re-registers"
    assert owner.delete(f"{devices}/phone") == OK
    assert owner.create(f"{devices}/bad1", {"token": "x", "admin": True}) == DENIED, "only device fields"
    assert owner.create(f"{devices}/bad2", {"platform": "ios"}) == DENIED, "a token is required"
    assert owner.create(f"{devices}/bad3", {"token": "x", "platform": "toaster"}) == DENIED
    stranger = server.as_user("someone-else")
    assert stranger.create(f"{devices}/evil", {"token": "attacker"}) == DENIED
    assert stranger.delete(f"{devices}/tablet") == DENIED
    assert server.as_user(None).create(f"{devices}/anon", {"token": "x"}) == DENIED
