"""The person's terminal view: `status`, `tasks`, `messages`, `inbox` (each with `--json`, the
last three with `--follow`) and `reply`. Reads go to the data dir (SQLite readers never block
the server); `reply` goes through the running server when there is one, so the agent waiting
for the answer is woken at once."""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from typing import Any

from cachebash.cli import common
from cachebash.cli.instance import running
from cachebash.cli.owner import Owner
from cachebash.config import Settings
from cachebash.ports.store import Query
from cachebash.services import inbox, owner_tasks
from cachebash.services.directory import all_programs
from cachebash.services.keys import list_tenant_keys
from cachebash.services.runtime import Runtime, tenant_path

FOLLOW_SECONDS = 1.0
MESSAGE_LIMIT = 50
SCAN_LIMIT = 500


def _view(runtime: Runtime, tenant: str, path: str, query: dict[str, str] | None = None) -> dict[str, Any]:
    """An owner-API view, read on the data dir (the same route the console reads)."""
    return Owner(runtime, tenant, None).call("GET", path, query=query)


def _clock(iso: str | None) -> str:
    return (iso or "")[11:19]


def _ago(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    days, hours = divmod(hours, 24)
    return f"{days}d {hours}h" if days else f"{hours}h {minutes}m" if hours else f"{minutes}m {secs}s"


def status_of(runtime: Runtime, config: Settings, tenant: str) -> dict[str, Any]:
    server = running(config.data_dir) if config.store == "sqlite" else None
    board = _view(runtime, tenant, "/tasks")["counts"]
    keys = list_tenant_keys(runtime, tenant)["keys"]
    return {
        "server": {"running": True, "pid": server.pid, "url": server.url,
                   "uptimeSeconds": round(server.uptime_seconds)} if server else {"running": False},
        "dataDir": str(config.data_dir), "programs": len(all_programs(runtime, tenant)),
        "keys": {"active": sum(1 for k in keys if k["active"]), "revoked": sum(1 for k in keys if not k["active"])},
        "tasks": board, "openQuestions": inbox.open_count(runtime, tenant)["openQuestions"],
    }


def cmd_status(args: argparse.Namespace) -> int:
    config = common.settings(args)
    found = status_of(common.runtime(config), config, args.tenant)
    if args.json:
        common.emit_json(found)
        return 0
    server = found["server"]
    print(f"server: running, pid {server['pid']}, {server['url']}, up {_ago(server['uptimeSeconds'])}"
          if server["running"] else "server: not running on this data dir (`cachebash serve` starts it)")
    tasks, cap = found["tasks"], owner_tasks.BOARD_LIMIT
    shown = {k: f"{v}+" if v >= cap else str(v) for k, v in tasks.items()}
    print(f"data: {found['dataDir']}\nprograms: {found['programs']}, keys: {found['keys']['active']} active "
          f"({found['keys']['revoked']} revoked)\ntasks: {shown['queued']} queued, {shown['active']} active, "
          f"{shown['done']} done, {shown['dead']} dead\nopen questions: {found['openQuestions']}"
          + ("  (`cachebash inbox`)" if found["openQuestions"] else ""))
    return 0


def _follow(args: argparse.Namespace, fetch: Callable[[], list[dict[str, Any]]], key: Callable[[dict[str, Any]], str],
            line: Callable[[dict[str, Any]], str], header: str) -> int:
    """Print what `fetch` lists (oldest first), and with --follow whatever changes after."""
    seen: set[str] = set()
    items = fetch()
    if args.json and not args.follow:
        common.emit_json(items)
        return 0
    if not args.json:
        print(header)
    while True:
        for item in sorted(items, key=lambda i: str(i.get("updatedAt") or i.get("createdAt") or "")):
            if key(item) not in seen:
                seen.add(key(item))
                if args.json:
                    common.emit_json(item)
                else:
                    print(line(item), flush=True)
        if not args.follow:
            return 0
        try:
            time.sleep(FOLLOW_SECONDS)
        except KeyboardInterrupt:  # the way to stop following
            return 0
        items = fetch()


def cmd_tasks(args: argparse.Namespace) -> int:
    runtime = common.runtime(common.settings(args))
    query = {k: v for k, v in {"state": args.state, "target": args.target, "program": args.program}.items() if v}

    def fetch() -> list[dict[str, Any]]:
        return list(_view(runtime, args.tenant, "/tasks", query)["tasks"])

    def line(t: dict[str, Any]) -> str:
        who = t.get("claimedBy") or t.get("target")
        return (f"{_clock(t.get('updatedAt') or t.get('createdAt'))}  {t['taskId'][:8]}  {t['status']:<11} "
                f"{t.get('priority', ''):<7} {who:<16} {common.short(t.get('title'), 50)}")

    return _follow(args, fetch, lambda t: f"{t['taskId']}:{t['status']}:{t.get('progress')}", line,
                   f"{'TIME':<8}  {'TASK':<8}  {'STATUS':<11} {'PRIO':<7} {'WHO':<16} TITLE")


def messages(runtime: Runtime, tenant: str, to: str | None, sender: str | None) -> list[dict[str, Any]]:
    """The newest messages, a group message once (to its group, as it was sent), filtered in memory
    over the newest SCAN_LIMIT so a group's copies never need an index of their own."""
    query = Query(tenant_path(tenant, "messages")).order("createdAt", descending=True).take(SCAN_LIMIT)
    shown: dict[str, dict[str, Any]] = {}
    for message in (d.data for d in runtime.store.query(query)):
        one = message.get("multicastId") or message["messageId"]
        if one in shown:
            continue
        target = message.get("group") or message["target"]
        if (to and to not in (target, message["target"])) or (sender and message.get("source") != sender):
            continue
        shown[one] = {**message, "messageId": one, "target": target}
    return list(shown.values())[:MESSAGE_LIMIT]


def cmd_messages(args: argparse.Namespace) -> int:
    runtime = common.runtime(common.settings(args))

    def line(m: dict[str, Any]) -> str:
        return (f"{_clock(m['createdAt'])}  {m['messageId'][:8]}  {m['source']} → {m['target']}  "
                f"{m.get('message_type', ''):<9} {common.short(m.get('message'), 60)}")

    return _follow(args, lambda: messages(runtime, args.tenant, args.to, args.sender), lambda m: str(m["messageId"]),
                   line, f"{'TIME':<8}  {'MESSAGE':<8}  FROM → TO  TYPE      TEXT")


def cmd_inbox(args: argparse.Namespace) -> int:
    runtime = common.runtime(common.settings(args))

    def fetch() -> list[dict[str, Any]]:
        listed = _view(runtime, args.tenant, "/inbox")["items"]
        return [i for i in listed if args.all or i["open"]]

    def line(i: dict[str, Any]) -> str:
        state = "open" if i["open"] else "answered" if i.get("answeredAt") else "-"
        text = i.get("title") or i.get("text")
        return f"{_clock(i['createdAt'])}  {i['id']}  {i['from']:<14} {state:<8} {common.short(text, 60)}"

    code = _follow(args, fetch, lambda i: f"{i['id']}:{i['open']}", line,
                   f"{'TIME':<8}  {'ID':<20}  {'FROM':<14} {'STATE':<8} QUESTION")
    if not args.json:
        print('\nAnswer with: cachebash reply ID "your answer"')
    return code


def cmd_reply(args: argparse.Namespace) -> int:
    config = common.settings(args)
    owner = Owner(common.runtime(config), args.tenant, running(config.data_dir) if config.store == "sqlite" else None)
    try:
        done = owner.call("POST", "/replies", {"replyTo": args.id, "message": args.text})
    finally:
        owner.close()
    via = "through the running server" if owner.server else "on the data dir (no server running)"
    print(f"answered {done['answered']} {args.id}: '{done['to']}' gets it as message {done['messageId']} ({via})")
    return 0


def register(sub: Any) -> None:
    status = sub.add_parser("status", help="is a server running on this data dir; programs, keys, tasks, questions")
    status.set_defaults(func=cmd_status)
    common.add_place(status, json_out=True)

    tasks = sub.add_parser("tasks", help="the task board, newest last (--follow to keep watching)")
    tasks.add_argument("--state", choices=[*owner_tasks.BOARD_STATES, "all"], help="queued, active, done or dead")
    tasks.add_argument("--target", help="only tasks for this program or group")
    tasks.add_argument("--program", help="only tasks this program created, claimed or completed")
    tasks.set_defaults(func=cmd_tasks)

    messages = sub.add_parser("messages", help=f"the newest {MESSAGE_LIMIT} messages (--follow to keep watching)")
    messages.add_argument("--to", help="only messages to this program or group (human: to you)")
    messages.add_argument("--from", dest="sender", help="only messages from this program")
    messages.set_defaults(func=cmd_messages)

    inbox_p = sub.add_parser("inbox", help="what agents asked you and is not answered yet (--all: answered too)")
    inbox_p.add_argument("--all", action="store_true")
    inbox_p.set_defaults(func=cmd_inbox)
    for command in (tasks, messages, inbox_p):
        command.add_argument("--follow", "-f", action="store_true", help="keep printing what changes (Ctrl-C stops)")
        common.add_place(command, json_out=True)

    reply = sub.add_parser("reply", help="answer a question from `cachebash inbox`; the asking agent is woken")
    reply.add_argument("id", help="the question's id (from `cachebash inbox`)")
    reply.add_argument("text", help="your answer")
    reply.set_defaults(func=cmd_reply)
    common.add_place(reply)


