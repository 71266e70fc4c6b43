"""One log line per state change a person watches for, named for the program and the task or
message: `builder claimed e468… "Fix type error in auth.ts"`. Services call one function here
after their change committed, each returning what it was given so the call wraps a `return`.

The lines go to the `cachebash.activity` logger at the ACTIVITY level (between INFO and
WARNING), with the tenant, program and task or message as labels; `cachebash.logs` decides how
they look (a clock and the text in a terminal, JSON with `severity` and labels in the cloud).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from cachebash.domain.programs import HUMAN

if TYPE_CHECKING:
    from cachebash.services.runtime import Caller
    from cachebash.services.sprint_flow import Released

ACTIVITY = 25
logging.addLevelName(ACTIVITY, "ACTIVITY")
log = logging.getLogger("cachebash.activity")
View = dict[str, Any]

_FINISHED = {"completed": "completed", "failed": "failed", "dead": "dead-lettered", "cancelled": "cancelled",
             "skipped": "skipped", "expired": "expired", "created": "failed transiently; it goes back in the queue"}


def ref(item_id: str | None) -> str:
    """A short id for a line a person reads (`cachebash tasks` shows 8 characters, ids match by prefix)."""
    return f"{item_id[:4]}…" if item_id else "?"


def _quote(text: Any, width: int = 60) -> str:
    one_line = " ".join(str(text or "").split())
    return '"' + (one_line if len(one_line) <= width else one_line[: width - 1] + "…") + '"'


def note(text: str, tenant: str, program: str, **labels: str | None) -> None:
    if log.isEnabledFor(ACTIVITY):
        shown = {k: v for k, v in {"tenant": tenant, "program": program, **labels}.items() if v}
        log.log(ACTIVITY, text, extra={"labels": shown})


def task_created(caller: Caller, view: View) -> View:
    note(f"{caller.program_id} created {ref(view['taskId'])} {_quote(view.get('title'))} for {view.get('target')}",
         caller.tenant_id, caller.program_id, task=view["taskId"])
    return view


def task_claimed(caller: Caller, view: View) -> View:
    task = view.get("task") if "task" in view else view  # claim_next wraps the claimed task
    if isinstance(task, dict) and task.get("taskId"):
        attempt = f" (attempt {task['attempt']})" if int(task.get("attempt") or 1) > 1 else ""
        note(f"{caller.program_id} claimed {ref(task['taskId'])} {_quote(task.get('title'))}{attempt}",
             caller.tenant_id, caller.program_id, task=task["taskId"])
    return view


def task_finished(caller: Caller, view: View) -> View:
    status = str(view.get("status"))
    text = f"{caller.program_id}: {ref(view['taskId'])} {_FINISHED[status]}" if status == "created" else \
        f"{caller.program_id} {_FINISHED.get(status, status)} {ref(view['taskId'])}"
    note(text, caller.tenant_id, caller.program_id, task=view["taskId"])
    return view


def lease_lost(tenant: str, task_id: str, status: str | None) -> str | None:
    if status is not None:
        then = "dead-lettered (no attempts left)" if status == "dead" else "back in the queue"
        note(f"lease lost on {ref(task_id)}: the holder stopped renewing; {then}", tenant, "cachebash", task=task_id)
    return status


def message_sent(caller: Caller, view: View, cmd: Any) -> View:
    """Only what a person watches: messages to a group and to the person; not every direct message."""
    target = str(view.get("target"))
    if view.get("multicastId") or target == HUMAN:
        kind = getattr(cmd.message_type, "value", cmd.message_type)
        note(f"{caller.program_id} → {target} {kind} {ref(view.get('messageId'))} {_quote(cmd.message)}",
             caller.tenant_id, caller.program_id, message=view.get("messageId"))
    return view


def question_answered(tenant: str, question_id: str, view: View) -> View:
    note(f"{HUMAN} answered {ref(question_id)}; {view.get('to')} gets the answer", tenant, HUMAN, message=question_id)
    return view


def stories_released(tenant: str, sprint_id: str, released: Released) -> Released:
    if released.tasks:
        targets = ", ".join(sorted({target for _, target in released.tasks}))
        note(f"sprint {sprint_id}: a wave unlocked, {len(released.tasks)} task(s) for {targets}", tenant,
             "cachebash", sprint=sprint_id)
    if released.completed:
        note(f"sprint {sprint_id} completed", tenant, "cachebash", sprint=sprint_id)
    return released


def key_created(view: View) -> View:
    note(f"key {view['keyId']} created for {view['programId']}{' (admin)' if view.get('admin') else ''}",
         view["tenantId"], view["programId"], key=view["keyId"])
    return view


def key_revoked(tenant: str, view: View) -> View:
    note(f"key {view['keyId']} of {view['programId']} revoked", tenant, view["programId"], key=view["keyId"])
    return view
