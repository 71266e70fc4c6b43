"""`cachebash keys create|list|revoke|rotate`: the person's keys, on the data dir (revoke and
rotate through the running server when there is one, so that process sees them at once)."""

from __future__ import annotations

import argparse
import re
import sys
from typing import Any

from cachebash.cli import common
from cachebash.cli.instance import running
from cachebash.cli.owner import Owner
from cachebash.domain.inputs import NAME_PATTERN, parse
from cachebash.domain.programs import CreateKey
from cachebash.services import keys
from cachebash.services.runtime import Runtime, tenant_path

NAME_RULE = "letters, digits, '.', '_' and '-', starting with a letter or digit (at most 64)"


def check_name(value: str, what: str, option: str) -> None:
    """The id rule in words: the tools' own error quotes a pattern, which a person should not have to read."""
    if not re.match(NAME_PATTERN, value):
        raise common.CliError(f"{option} {value!r}: {what} ids are {NAME_RULE}")


def create(runtime: Runtime, tenant: str, program: str, groups: list[str], label: str | None = None,
           admin: bool = False) -> dict[str, Any]:
    check_name(program, "program", "--program")
    for group in groups:
        check_name(group, "group", "--group")
    cmd = parse(CreateKey, {"programId": program, "label": label, "groups": groups, "admin": admin})
    return keys.issue_key(runtime, tenant, cmd, "cli")


def cmd_create(args: argparse.Namespace) -> int:
    runtime = common.runtime(common.settings(args))
    created = create(runtime, args.tenant, args.program, args.group or [], args.label, args.admin)
    groups = ", ".join(created["groups"]) or "none"
    print(f"Key {created['keyId']} for program '{args.program}' in tenant '{args.tenant}' "
          f"(groups: {groups}{', admin' if args.admin else ''}). Shown only once:", file=sys.stderr)
    print(created["apiKey"])
    return 0


def listed(runtime: Runtime, tenant: str) -> list[dict[str, Any]]:
    """The tenant's keys with their program's groups (never the keys themselves)."""
    found: list[dict[str, Any]] = keys.list_tenant_keys(runtime, tenant)["keys"]
    groups: dict[str, list[str]] = {}
    for key in found:
        program = key["programId"]
        if program not in groups:
            doc = runtime.store.get(tenant_path(tenant, "programs", program)) or {}
            groups[program] = list(doc.get("groups", []))
        key["groups"] = groups[program]
    return found


def cmd_list(args: argparse.Namespace) -> int:
    found = listed(common.runtime(common.settings(args)), args.tenant)
    if args.json:
        common.emit_json({"keys": found})
        return 0
    if not found:
        print("No keys yet: `cachebash connect --program NAME --client CLIENT` makes one for an agent.")
        return 0
    rows = [[k["keyId"], k["programId"], ",".join(k["groups"]) or "-", "admin" if k["admin"] else "agent",
             "active" if k["active"] else f"revoked {k['revokedAt'][:16]}", (k.get("lastUsedAt") or "never")[:19],
             k.get("label") or ""] for k in found]
    print(common.table(rows, ["KEY ID", "PROGRAM", "GROUPS", "KIND", "STATE", "LAST USED", "LABEL"]))
    return 0


def _owner_call(args: argparse.Namespace, method: str, path: str) -> dict[str, Any]:
    config = common.settings(args)
    owner = Owner(common.runtime(config), args.tenant, running(config.data_dir))
    try:
        return owner.call(method, path)
    finally:
        owner.close()


def cmd_revoke(args: argparse.Namespace) -> int:
    done = _owner_call(args, "DELETE", f"/keys/{args.key_id}")
    print(f"revoked {args.key_id} (program '{done['programId']}'): it gets HTTP 401 from now on")
    return 0


def cmd_rotate(args: argparse.Namespace) -> int:
    done = _owner_call(args, "POST", f"/keys/{args.key_id}/rotate")
    print(f"Key {done['keyId']} replaces {args.key_id} for program '{done['programId']}' (the old one is revoked). "
          "Shown only once; put it in the agent's config (`cachebash connect` rewrites it):", file=sys.stderr)
    print(done["apiKey"])
    return 0


def register(sub: Any) -> None:
    group = sub.add_parser("keys", help="manage API keys").add_subparsers(dest="keys_command", required=True)
    create_p = group.add_parser("create", help="create a key; prints it alone on the last line")
    create_p.add_argument("--program", required=True, help="program id the key acts as")
    create_p.add_argument("--label")
    create_p.add_argument("--group", action="append", help="add the program to this group (repeatable)")
    create_p.add_argument("--admin", action="store_true", help="may manage keys and read any program state")
    create_p.set_defaults(func=cmd_create)
    common.add_place(create_p)
    list_p = group.add_parser("list", help="list keys: program, groups, state, last used (never the keys)")
    list_p.set_defaults(func=cmd_list)
    common.add_place(list_p, json_out=True)
    for name, func, text in (("revoke", cmd_revoke, "revoke a key by its key id"),
                             ("rotate", cmd_rotate, "replace a key with a new one for the same program")):
        command = group.add_parser(name, help=text)
        command.add_argument("key_id")
        command.set_defaults(func=func)
        common.add_place(command)
