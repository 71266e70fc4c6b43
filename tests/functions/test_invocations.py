"""How many Cloud Function invocations each tool call starts, derived from the deploy plan and
the writes and events each tool really makes (issue #16: no function runs for a write it ignores).

Every tool runs once on SQLite through its ToolSpec, with the embedded bus running the same
handlers the Pub/Sub functions run, so a call's count includes what its events go on to write
(a group message's copies, a wave's tasks). A store wrapper records each committed write; the
deploy plan's Firestore triggers are matched against those writes, and its Pub/Sub functions
against the events published to their topics. The table this prints is the one in README,
"Function invocations per tool call".
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import pytest

from cachebash import deploy
from cachebash.adapters.inprocess_bus import InProcessBus
from cachebash.adapters.sqlite_store import SqliteStore
from cachebash.bootstrap import build_runtime
from cachebash.config import Settings
from cachebash.domain.inputs import parse
from cachebash.interface.tools import ToolSpec, all_tools
from cachebash.ports.bus import Event
from cachebash.ports.clock import ManualClock
from cachebash.ports.store import Transaction, Wrapping
from cachebash.services import app_answers
from cachebash.services.events import BY_TOPIC, DocumentTrigger
from cachebash.services.runtime import Caller, Runtime
from support.callers import make_caller

T = TypeVar("T")
README = Path(__file__).resolve().parents[2] / "README.md"

#: The triggers `cachebash deploy` wired before issue #16, to show what the change saves.
BEFORE: dict[str, DocumentTrigger] = {
    "answered_question": DocumentTrigger("answered_question", "tenants/{tenant}/tasks/{task}"),
    "answered_message": DocumentTrigger("answered_message", "tenants/{tenant}/messages/{message}"),
    "sprint_waves": DocumentTrigger("sprint_waves", "tenants/{tenant}/sprints/{sprint}/stories/{story}"),
}


@dataclass(frozen=True)
class Write:
    op: str  # create, set, update, delete
    path: str

    @property
    def created(self) -> bool:
        return self.op in ("create", "set")  # a set may create: counted for `created` triggers too


class Recorder(Wrapping):
    """Notes each write (increments too: a counter bump is a document written) before passing it on."""

    def __init__(self, tx: Transaction, writes: list[Write]) -> None:
        super().__init__(tx)
        self._writes = writes

    def create(self, path: str, data: dict[str, Any]) -> None:
        self._writes.append(Write("create", path))
        super().create(path, data)

    def set(self, path: str, data: dict[str, Any]) -> None:
        self._writes.append(Write("set", path))
        super().set(path, data)

    def update(self, path: str, fields: dict[str, Any]) -> None:
        self._writes.append(Write("update", path))
        super().update(path, fields)

    def delete(self, path: str) -> None:
        self._writes.append(Write("delete", path))
        super().delete(path)

    def increment(self, path: str, deltas: Mapping[str, int | float], fields: Mapping[str, Any] | None = None) -> None:
        self._writes.append(Write("set", path))
        super().increment(path, deltas, fields)


class RecordingStore(SqliteStore):
    """SQLite that keeps the writes of every committed transaction (the last attempt's only)."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.writes: list[Write] = []

    def run_transaction(self, fn: Callable[[Transaction], T]) -> T:
        attempt: list[Write] = []

        def recorded(tx: Transaction) -> T:
            attempt.clear()
            return fn(Recorder(tx, attempt))

        result = super().run_transaction(recorded)
        self.writes.extend(attempt)
        return result


class RecordingBus(InProcessBus):
    """The embedded bus (handlers run in-process), noting each event and what its handlers wrote."""

    def __init__(self) -> None:
        super().__init__()
        self.store: RecordingStore | None = None
        self.events: list[tuple[Event, int]] = []  # (event, writes its handlers made)

    def publish(self, event: Event) -> None:
        assert self.store is not None
        before = len(self.store.writes)
        try:
            super().publish(event)
        finally:
            self.events.append((event, len(self.store.writes) - before))


@dataclass
class Call:
    """What one tool call did: its writes (its own and its events' handlers') and its events."""

    writes: list[Write] = field(default_factory=list)
    events: list[tuple[Event, int]] = field(default_factory=list)

    def firestore(self, triggers: dict[str, DocumentTrigger]) -> Counter[str]:
        return Counter(name for w in self.writes for name, t in triggers.items() if t.matches(w.path, w.created))

    def pubsub(self) -> Counter[str]:
        return Counter(name for e, _ in self.events for name, topics in deploy.PUBSUB_FUNCTIONS.items()
                       if e.topic in topics and e.needs_delivery())

    def idle_pubsub(self) -> list[str]:
        """Pub/Sub invocations whose handlers wrote nothing."""
        return [f"{name} <- {e.topic} {e.data}" for e, wrote in self.events
                for name, topics in deploy.PUBSUB_FUNCTIONS.items()
                if e.topic in topics and e.needs_delivery() and not wrote]


class Tour:
    def __init__(self, tmp: Path) -> None:
        self.store = RecordingStore(tmp / "store.db")
        self.bus = RecordingBus()
        self.bus.store = self.store
        self.rt: Runtime = build_runtime(Settings(), store=self.store, bus=self.bus, clock=ManualClock())
        self.specs = {spec.name: spec for spec in all_tools()}
        self.calls: dict[str, list[Call]] = {}
        self.sprint_id = ""

    def call(self, caller: Caller, tool: str, case: str = "", **arguments: Any) -> dict[str, Any]:
        """Call `tool`; its row in the table is `tool (case)` when a case is named."""
        spec: ToolSpec = self.specs[tool]
        writes, events = len(self.store.writes), len(self.bus.events)
        result = spec.handler(self.rt, caller, parse(spec.input, arguments))
        self.rt.dispatcher.flush()  # the outbox's own deletes, now rather than from its thread later
        row = f"`{tool}` ({case})" if case else f"`{tool}`"
        self.calls.setdefault(row, []).append(Call(self.store.writes[writes:], self.bus.events[events:]))
        return result

    def phone_answers(self, question_id: str, text: str, row: str) -> None:
        """What the phone app does (not a tool): create the answer document; then the `answered`
        function runs on it (here called as its trigger would)."""
        writes, events = len(self.store.writes), len(self.bus.events)
        path = app_answers.answer_path("default", question_id)
        self.store.run_transaction(lambda tx: tx.create(path, {"answer": text, "answeredAt": self.rt.clock.iso()}))
        app_answers.apply(self.rt, "default", question_id)
        self.rt.dispatcher.flush()
        self.calls.setdefault(f"{PHONE} {row}", []).append(Call(self.store.writes[writes:], self.bus.events[events:]))


PHONE = "the phone app answers"


def tour(t: Tour) -> None:
    """Every tool at least once, as agents use them: a task's life, messages to one and to a
    group, a question and a QUERY to the human answered from the phone, a two-wave sprint run
    through to its end, program state and keys."""
    admin = make_caller(t.rt, "lead", admin=True)
    builder = make_caller(t.rt, "builder", groups=("builders",))
    make_caller(t.rt, "builder-2", groups=("builders",))
    task = t.call(admin, "create_task", title="tour", target="builder", instructions="do it")
    t.call(builder, "get_tasks")
    claim = t.call(builder, "claim_task", taskId=task["taskId"])
    t.call(builder, "report_task_progress", taskId=task["taskId"], claim_token=claim["claimToken"], progress=50)
    t.call(builder, "renew_claim", taskId=task["taskId"])
    t.call(builder, "release_task", taskId=task["taskId"], reason="handing back")
    t.call(builder, "claim_next")
    t.call(admin, "list_programs")
    t.call(builder, "get_task", taskId=task["taskId"])
    t.call(builder, "complete_task", taskId=task["taskId"], result="done")
    sent = t.call(admin, "send_message", target="builder", message="hi", threadId="tour")
    t.call(admin, "send_message", "to a group of 2", target="builders", message="all of you", threadId="tour")
    t.call(builder, "get_messages")
    t.call(builder, "get_thread", threadId="tour")
    t.call(builder, "get_message", messageId=sent["messageId"])
    t.call(builder, "list_groups")
    asked = t.call(builder, "send_message", "a QUERY to the human", target="human", message="Merge?",
                   message_type="QUERY")
    question = t.call(builder, "create_task", "a question to the human", title="Which DB?", type="question",
                      target="human")
    t.phone_answers(asked["messageId"], "Yes", "the QUERY")
    t.phone_answers(question["taskId"], "Postgres", "the question")
    sprint = t.call(admin, "create_sprint", "3 stories in 2 waves", projectName="tour", target="builders",
                    stories=[{"id": "s1", "title": "one"}, {"id": "s2", "title": "two"},
                             {"id": "s3", "title": "three", "wave": 2}])
    t.sprint_id = sprint["sprintId"]
    t.call(admin, "add_story_to_sprint", sprintId=sprint["sprintId"], story={"id": "s4", "title": "four", "wave": 3})
    t.call(admin, "get_sprint", sprintId=sprint["sprintId"])
    s1 = t.call(builder, "claim_next", "a story", type="sprint-story")
    t.call(builder, "update_sprint_story", "progress on a story", sprintId=sprint["sprintId"], storyId="s1",
           progress=50)
    t.call(builder, "complete_task", "a story, its wave not done", taskId=s1["taskId"], result="one done")
    t.call(admin, "update_sprint_story", "skip the wave's last story", sprintId=sprint["sprintId"], storyId="s2",
           status="skipped")
    s3 = t.call(builder, "claim_next", "a story", type="sprint-story")
    t.call(builder, "complete_task", "a story, the last of its wave", taskId=s3["taskId"], result="three done")
    t.call(admin, "complete_sprint", "cancel, a story open", sprintId=sprint["sprintId"], cancel=True,
           reason="tour over")
    t.call(builder, "update_program_state", contextSummary={"lastTask": {"taskId": task["taskId"]}})
    t.call(builder, "get_program_state")
    spare = t.call(admin, "create_key", programId="tour-spare")
    t.call(admin, "list_keys")
    t.call(admin, "revoke_key", keyId=spare["keyId"])
    t.call(builder, "get_usage")
    t.call(admin, "get_cost_summary", period="month", group_by="model")


@pytest.fixture
def toured(tmp_path: Path) -> Iterator[Tour]:
    t = Tour(tmp_path)
    tour(t)
    yield t
    t.rt.dispatcher.flush()
    t.store.close()


def per_call(calls: list[Call], count: Callable[[Call], Counter[str]]) -> Counter[str]:
    """Invocations per call (the mean, where the tour makes the same call more than once)."""
    total: Counter[str] = Counter()
    for call in calls:
        total.update(count(call))
    return Counter({name: n / len(calls) for name, n in total.items()})


def table(t: Tour) -> str:
    firestore = list(deploy.FIRESTORE_FUNCTIONS)
    pubsub = [name for name in deploy.PUBSUB_FUNCTIONS if name != "sweeper"]  # scheduled, no tool starts it
    head = ["Tool call", *(f"`{f}`" for f in [*firestore, *pubsub]), "before #16 (Firestore)"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row, calls in t.calls.items():
        now = per_call(calls, lambda c: c.firestore(deploy.FIRESTORE_FUNCTIONS) + c.pubsub())
        before = per_call(calls, lambda c: c.firestore(BEFORE))
        cells = [_figure(now[f]) for f in [*firestore, *pubsub]]
        was = ", ".join(f"{_figure(n)} `{name}`" for name, n in sorted(before.items())) or "0"
        lines.append(f"| {row} | " + " | ".join(cells) + f" | {was} |")
    return "\n".join(lines)


def _figure(n: float) -> str:
    return "0" if not n else (f"{n:g}" if n == int(n) else f"{n:.1f}")


def test_the_tour_calls_every_tool(toured: Tour) -> None:
    assert {row.split("`")[1] for row in toured.calls if not row.startswith(PHONE)} == {
        spec.name for spec in all_tools()}


def test_no_firestore_trigger_fires_on_a_write_a_tool_makes(toured: Tour) -> None:
    fired = {tool: dict(c.firestore(deploy.FIRESTORE_FUNCTIONS)) for tool, calls in toured.calls.items()
             for c in calls if not tool.startswith(PHONE) and c.firestore(deploy.FIRESTORE_FUNCTIONS)}
    assert fired == {}
    before = sum(sum(c.firestore(BEFORE).values()) for calls in toured.calls.values() for c in calls)
    assert before > 40, "the old triggers fired on most tool calls (the measure measures something)"


def test_a_phone_answer_starts_answered_once_and_its_own_writes_start_nothing(toured: Tour) -> None:
    phone = [c for row, calls in toured.calls.items() if row.startswith(PHONE) for c in calls]
    assert len(phone) == 2
    for call in phone:
        assert call.firestore(deploy.FIRESTORE_FUNCTIONS) == Counter({"answered": 1})
        assert call.writes[0].path.split("/")[2] == "answers", "the phone's own write is the one that fires it"
        assert any(w.op == "delete" and w.path == call.writes[0].path for w in call.writes), "applied and gone"


def test_every_pubsub_invocation_acts(toured: Tour) -> None:
    idle = [f"{tool}: {what}" for tool, calls in toured.calls.items() for c in calls for what in c.idle_pubsub()]
    # A story's finish publishes StoryChanged whether or not it ends its wave: knowing would take
    # reading every story in the finishing transaction (README, "Function invocations per tool call").
    assert idle == ["`complete_task` (a story, its wave not done): sprint_waves <- sprint.story_changed "
                    f"{{'sprintId': '{toured.sprint_id}', 'storyId': 's1'}}"]


def test_every_event_on_the_wire_is_one_the_catalogue_knows(toured: Tour) -> None:
    assert {e.topic for calls in toured.calls.values() for c in calls for e, _ in c.events} <= set(BY_TOPIC)


def test_the_readme_shows_this_table(toured: Tour) -> None:
    assert table(toured) in README.read_text(), "README, 'Function invocations per tool call':\n" + table(toured)
