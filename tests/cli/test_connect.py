"""`cachebash connect` writes each client's own file format, merges into a file that already
lists other servers (keeping them, with a backup), and does nothing new on a re-run."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import pytest

from cachebash.interface.client_configs import CLIENTS
from support.cli_runner import Cli

URL = "http://127.0.0.1:8080/v1/mcp"

#: An existing file per client, with another server and settings of its own (as each client writes them).
EXISTING = {
    "claude-code": '{"mcpServers": {"github": {"type": "http", "url": "https://api.example/mcp"}}}',
    "cursor": '{"mcpServers": {"fs": {"command": "npx", "args": ["-y", "server-fs"]}}}',
    "gemini": '{"theme": "Dracula", "mcpServers": {"git": {"command": "uvx", "args": ["mcp-server-git"]}}}',
    "vscode": '{"inputs": [], "servers": {"memory": {"command": "npx", "args": ["-y", "server-memory"]}}}',
    "codex": 'model = "o3"\n\n[mcp_servers.docs]\ncommand = "npx"\nargs = ["-y", "docs-mcp"]\n\n'
             '[mcp_servers.figma]\nurl = "http://127.0.0.1:3845/mcp"\n',
}


def _read(client: str, path: Path) -> dict[str, object]:
    text = path.read_text()
    return tomllib.loads(text) if client == "codex" else json.loads(text)


def _ours(client: str, document: dict[str, object]) -> dict[str, object]:
    servers = document[CLIENTS[client].servers_key]
    assert isinstance(servers, dict)
    return dict(servers["cachebash"])


@pytest.mark.parametrize("client", sorted(CLIENTS))
def test_merges_into_an_existing_file_and_reruns_idempotently(tmp_path: Path, cachebash: Cli, client: str) -> None:
    project = tmp_path / "project"
    path = project / CLIENTS[client].project_file
    path.parent.mkdir(parents=True)
    path.write_text(EXISTING[client])
    before = _read(client, path)

    out = cachebash.ok("connect", "--program", "builder", "--group", "builders", "--client", client,
                       "--dir", str(project))
    assert "as 'builder' (builders;" in out and str(path) in out
    after = _read(client, path)
    entry = _ours(client, after)
    spec = CLIENTS[client]
    assert entry[spec.url_field] == URL
    key = entry[spec.headers_field]["Authorization"].removeprefix("Bearer ")  # type: ignore[index]
    assert key.startswith("cb_")
    if client in ("claude-code", "vscode"):
        assert entry["type"] == "http"
    # Everything else is kept, and the previous version is beside it.
    servers = dict(after[spec.servers_key])  # type: ignore[call-overload]
    del servers["cachebash"]
    assert {**after, spec.servers_key: servers} == before
    assert (path.parent / (path.name + ".bak")).read_text() == EXISTING[client]
    # The key is the program's: the data dir knows it.
    listed = json.loads(cachebash.ok("keys", "list", "--json"))["keys"]
    assert [(k["programId"], k["groups"]) for k in listed] == [("builder", ["builders"])]

    again = cachebash.ok("connect", "--program", "builder", "--client", client, "--dir", str(project))
    assert "nothing to do" in again
    assert _read(client, path) == after
    assert len(json.loads(cachebash.ok("keys", "list", "--json"))["keys"]) == 1, "no key minted for nothing"


def test_a_revoked_key_is_replaced_and_a_new_file_is_made(tmp_path: Path, cachebash: Cli) -> None:
    project = tmp_path / "p"
    cachebash.ok("connect", "--program", "reviewer", "--client", "vscode", "--dir", str(project))
    path = project / ".vscode" / "mcp.json"
    first = json.loads(path.read_text())["servers"]["cachebash"]["headers"]["Authorization"]
    assert not (path.parent / "mcp.json.bak").exists(), "no backup of a file that did not exist"
    key_id = json.loads(cachebash.ok("keys", "list", "--json"))["keys"][0]["keyId"]
    cachebash.ok("keys", "revoke", key_id)
    cachebash.ok("connect", "--program", "reviewer", "--client", "vscode", "--dir", str(project))
    assert json.loads(path.read_text())["servers"]["cachebash"]["headers"]["Authorization"] != first


def test_print_only_prints(tmp_path: Path, cachebash: Cli) -> None:
    out = cachebash.ok("connect", "--program", "investigator", "--client", "gemini", "--print", cwd=tmp_path)
    assert json.loads(out)["mcpServers"]["cachebash"]["httpUrl"] == URL
    assert not (tmp_path / ".gemini").exists()


def test_refusals_say_what_to_do(tmp_path: Path, cachebash: Cli) -> None:
    bad = cachebash("connect", "--program", "Bad Name!", "--client", "cursor", "--dir", str(tmp_path))
    assert bad.returncode == 2
    assert bad.stderr.strip() == ("error: --program 'Bad Name!': program ids are letters, digits, '.', '_' and '-', "
                                  "starting with a letter or digit (at most 64)")
    broken = tmp_path / ".mcp.json"
    broken.write_text("{not json")
    done = cachebash("connect", "--program", "b", "--client", "claude-code", "--dir", str(tmp_path))
    assert done.returncode == 2 and "not valid JSON" in done.stderr and "nothing was written" in done.stderr
    assert broken.read_text() == "{not json"
    inline = tmp_path / ".codex" / "config.toml"
    inline.parent.mkdir()
    inline.write_text('mcp_servers = { cachebash = { url = "http://old" } }\n')
    done = cachebash("connect", "--program", "b", "--client", "codex", "--dir", str(tmp_path))
    assert done.returncode == 2 and "inline table" in done.stderr
    glob = cachebash("connect", "--program", "b", "--client", "claude-code", "--global")
    assert glob.returncode == 2 and "--dir" in glob.stderr
