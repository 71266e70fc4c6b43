"""The console in a real browser (Debian's Chromium), against a real `cachebash serve`, with
agents on the official MCP client: what the person sees and does reaches the agents.

Agents run in threads with their own event loops (playwright's sync API owns this thread's,
see conftest). Screenshots go to $CACHEBASH_SCREENSHOTS (the README's `docs/`), else to tmp.
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from concurrent.futures import Future
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
from playwright.sync_api import expect

from browser.conftest import Tab, assert_no_horizontal_scroll
from support.console import login_link
from support.seeds import SEED_SPRINT, SEED_STORIES
from support.server import Agent, ServerProcess

T = TypeVar("T")
PAGES = ("inbox", "send", "tasks", "sprints", "agents", "keys", "usage")


def in_thread(make: Callable[[], Awaitable[T]]) -> Future[T]:
    """Run an async agent script on its own loop in a thread; the future holds its result."""
    done: Future[T] = Future()

    def run() -> None:
        try:
            done.set_result(asyncio.run(make()))  # type: ignore[arg-type]
        except BaseException as exc:  # noqa: BLE001 - handed to the test through the future
            done.set_exception(exc)

    threading.Thread(target=run, daemon=True).start()
    return done


def call(key: str, url: str, tool: str, **arguments: Any) -> dict[str, Any]:
    async def go() -> dict[str, Any]:
        async with Agent(url, key) as agent:
            return await agent.call(tool, **arguments)

    return in_thread(go).result(timeout=60)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    proc = ServerProcess(tmp_path_factory.mktemp("console") / "data", env={"CACHEBASH_STORE": "sqlite"}).start()
    yield proc
    proc.stop()


@pytest.fixture
def tenant(server: ServerProcess) -> str:
    return "t-" + uuid.uuid4().hex[:10]


@pytest.fixture
def admin_key(server: ServerProcess, tenant: str) -> str:
    return server.cli("keys", "create", "--program", "orchestrator", "--admin", "--tenant", tenant).split()[-1]


def key_for(server: ServerProcess, tenant: str, program: str, *groups: str) -> str:
    flags = [arg for group in groups for arg in ("--group", group)]
    return server.cli("keys", "create", "--program", program, *flags, "--tenant", tenant).split()[-1]


def sign_in(tab: Tab, server: ServerProcess, tenant: str) -> None:
    tab.page.goto(login_link(server, tenant))
    tab.page.wait_for_url("**/console/#/inbox")
    tab.page.get_by_test_id("open-count").wait_for()


def shot(tab: Tab, name: str, tmp_path: Path) -> None:
    folder = Path(os.environ.get("CACHEBASH_SCREENSHOTS") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    tab.page.screenshot(path=str(folder / f"{name}.png"), full_page=False)


def test_the_person_answers_a_waiting_agent_within_a_second(server: ServerProcess, tenant: str, desk_page: Any,
                                                           tmp_path: Path) -> None:
    builder = key_for(server, tenant, "builder", "builders")
    asked: dict[str, Any] = {}
    received: dict[str, Any] = {}

    async def agent() -> None:
        async with Agent(server.url, builder) as me:
            asked.update(await me.call("send_message", target="human", message_type="QUERY",
                                       message="Merge PR #12 into main?", threadId="pr-12"))
            got = await me.call("get_messages", wait_seconds=20)
            received.update(at=time.monotonic(), messages=got["messages"])

    waiting = in_thread(agent)
    tab = desk_page()
    sign_in(tab, server, tenant)
    item = tab.page.get_by_test_id("inbox-item").filter(has_text="Merge PR #12 into main?")
    item.wait_for()
    assert tab.page.get_by_test_id("open-count").inner_text().strip() == "1"
    assert "builder" in item.inner_text()
    shot(tab, "console-inbox", tmp_path)
    item.get_by_test_id("answer-input").fill("Yes — merge it.")
    sent_at = time.monotonic()
    item.get_by_test_id("answer-send").click()
    waiting.result(timeout=25)
    assert received["at"] - sent_at < 1.0, f"the agent got the answer {received['at'] - sent_at:.2f}s later"
    [answer] = received["messages"]
    assert (answer["source"], answer["message_type"], answer["reply_to"], answer["message"]) == (
        "human", "RESULT", asked["messageId"], "Yes — merge it.")
    tab.page.get_by_test_id("answered").first.wait_for()
    expect(tab.page.get_by_test_id("open-count")).to_have_text("0")
    tab.assert_clean()


def test_a_key_made_in_the_console_works_and_a_revoked_one_is_refused(server: ServerProcess, tenant: str,
                                                                     desk_page: Any, tmp_path: Path) -> None:
    tab = desk_page()
    sign_in(tab, server, tenant)
    tab.page.get_by_test_id("nav-keys").click()
    form = tab.page.get_by_test_id("key-create-form")
    form.locator("[name=programId]").fill("reviewer")
    form.locator("[name=groups]").fill("council")
    form.locator("[name=label]").fill("Reviewer - Cursor")
    form.locator("button[type=submit]").click()
    panel = tab.page.get_by_test_id("new-key")
    panel.wait_for()
    key = panel.get_by_test_id("new-key-value").inner_text().strip()
    assert key.startswith("cb_")
    assert panel.get_by_test_id("qr").locator("svg").count() == 1
    assert key in panel.inner_text()  # the ready-to-paste configs carry it
    shot(tab, "console-new-key", tmp_path)
    state = call(key, server.url, "get_program_state")
    assert state["programId"] == "reviewer"
    row = tab.page.get_by_test_id("key-row").filter(has_text="reviewer")
    row.wait_for()
    tab.page.once("dialog", lambda dialog: dialog.accept())
    row.get_by_test_id("key-revoke").click()
    ping = {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}
    headers = {"Authorization": f"Bearer {key}", "Accept": "application/json, text/event-stream"}
    deadline = time.monotonic() + 10
    while httpx.post(server.url, json=ping, headers=headers).status_code != 401:
        assert time.monotonic() < deadline, "the revoked key still works"
        time.sleep(0.1)
    tab.assert_clean()


def test_wave_bars_move_as_the_builders_work_without_a_reload(server: ServerProcess, tenant: str, admin_key: str,
                                                             desk_page: Any, tmp_path: Path) -> None:
    builder = key_for(server, tenant, "builder", "builders")
    sprint = call(admin_key, server.url, "create_sprint", **SEED_SPRINT)
    tab = desk_page()
    sign_in(tab, server, tenant)
    tab.page.goto(f"{server.base}/console/#/sprints/{sprint['sprintId']}")
    tab.page.get_by_test_id("wave-bar-2").wait_for()
    tab.page.evaluate("() => { window.__notReloaded = true; }")
    assert tab.page.get_by_test_id("wave-bar-2").get_attribute("aria-valuenow") == "0"

    wave_one = sum(1 for story in SEED_STORIES if story["wave"] == 1)

    async def work() -> None:
        """Finish every wave-1 story, then start one of wave 2 (it unlocked when wave 1 ended)."""
        async with Agent(server.url, builder) as me:
            for _ in range(wave_one):
                task = await me.call("claim_next", type="sprint-story")
                await me.call("complete_task", taskId=task["taskId"], claim_token=task["task"]["claimToken"])
            task = await me.call("claim_next", type="sprint-story")
            await me.call("report_task_progress", taskId=task["taskId"], progress=40,
                          claim_token=task["task"]["claimToken"])

    in_thread(work).result(timeout=60)
    expect(tab.page.get_by_test_id("wave-bar-1")).to_have_attribute("aria-valuenow", "100", timeout=10_000)
    expect(tab.page.get_by_test_id("wave-bar-2")).not_to_have_attribute("aria-valuenow", "0", timeout=10_000)
    assert tab.page.evaluate("() => window.__notReloaded") is True
    shot(tab, "console-sprint", tmp_path)
    tab.assert_clean()


def test_the_usage_page_shows_what_complete_task_recorded(server: ServerProcess, tenant: str, admin_key: str,
                                                         desk_page: Any, tmp_path: Path) -> None:
    builder = key_for(server, tenant, "builder")
    server.cli("plan", "set", "--plan", "free", "--tenant", tenant)  # through the running server's owner API
    made = call(admin_key, server.url, "create_task", title="Summarise logs", target="builder")

    async def work() -> None:
        async with Agent(server.url, builder) as me:
            claim = await me.call("claim_task", taskId=made["taskId"])
            await me.call("complete_task", taskId=made["taskId"], claim_token=claim["claimToken"], tokens_in=12000,
                          tokens_out=3400, cost_usd=1.25, model="claude-sonnet-4-5", provider="anthropic")

    in_thread(work).result(timeout=60)
    tab = desk_page()
    sign_in(tab, server, tenant)
    tab.page.get_by_test_id("nav-usage").click()
    cost = tab.page.get_by_test_id("usage-month-cost")
    cost.wait_for()
    assert "$1.25" in cost.inner_text()
    charts = tab.page.get_by_test_id("usage-charts")
    assert charts.locator("svg").count() >= 3
    assert "claude-sonnet-4-5" in tab.page.inner_text("body")
    assert tab.page.get_by_test_id("usage-plan-name").inner_text() == "free"
    assert "1 of 500 tasks this month · 499 left · resets" in tab.page.get_by_test_id("usage-quota").inner_text()
    expect(tab.page.get_by_test_id("usage-quota-bar")).to_have_attribute("aria-valuenow", "1")
    assert tab.page.get_by_test_id("usage-open").inner_text() == "0 of 500 open tasks allowed"
    shot(tab, "console-usage", tmp_path)
    tab.assert_clean()


def test_every_page_fits_a_phone_without_errors(server: ServerProcess, tenant: str, admin_key: str,
                                                phone_page: Any, tmp_path: Path) -> None:
    key_for(server, tenant, "builder-with-a-rather-long-program-name", "builders")
    task = call(admin_key, server.url, "create_task", title="A task with a long title " * 4, target="builders",
                instructions="x" * 500)
    call(admin_key, server.url, "create_sprint", **SEED_SPRINT)
    tab = phone_page()
    sign_in(tab, server, tenant)
    for page in PAGES:
        tab.page.get_by_test_id(f"nav-{page}").click()
        tab.page.wait_for_url(f"**/#/{page}")
        tab.page.wait_for_load_state("networkidle")
        assert_no_horizontal_scroll(tab.page)
        shot(tab, f"phone-{page}", tmp_path)
    tab.page.goto(f"{server.base}/console/#/tasks/{task['taskId']}")
    tab.page.get_by_test_id("task-detail").wait_for()
    assert_no_horizontal_scroll(tab.page)
    shot(tab, "phone-task", tmp_path)
    tab.assert_clean()


def test_desk_screens(server: ServerProcess, tenant: str, admin_key: str, desk_page: Any, tmp_path: Path) -> None:
    """The board and the fleet on a desk, as the README shows them."""
    for program, group in (("builder", "builders"), ("reviewer", "council")):
        key_for(server, tenant, program, group)
    for title, priority in (("Fix type error in auth.ts", "high"), ("Add rate limiting", "normal")):
        call(admin_key, server.url, "create_task", title=title, target="builder", priority=priority)
    tab = desk_page()
    sign_in(tab, server, tenant)
    for page in ("tasks", "agents"):
        tab.page.get_by_test_id(f"nav-{page}").click()
        tab.page.wait_for_load_state("networkidle")
        assert_no_horizontal_scroll(tab.page)
        shot(tab, f"console-{page}", tmp_path)
    assert tab.page.get_by_test_id("agent-row").count() >= 3
    tab.assert_clean()


def test_without_a_session_the_console_says_how_to_sign_in(server: ServerProcess, desk_page: Any) -> None:
    tab = desk_page()
    tab.page.goto(f"{server.base}/console/")
    notice = tab.page.get_by_test_id("signed-out")
    notice.wait_for()
    assert "cachebash console" in notice.inner_text()
    # the 401 of the session probe is expected; nothing else may fail
    assert all("401" in e for e in tab.errors), tab.errors
