"""The dashboard in a real browser (Debian's Chromium, driven by Playwright): open the inbox,
approve a pending refund, watch the execution complete. The screenshot is kept in
test-artifacts/ for a human to look at."""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import pytest
import uvicorn
from examples.support_triage import backend
from examples.support_triage.agents import triage_agent
from playwright.sync_api import Page, expect, sync_playwright
from sqlalchemy import update

from in_doubt import REFUNDS, in_doubt_execution, refunder
from keel import AgentRuntime, Status, Worker
from keel.runtime._store import EXECUTIONS
from keel.server import create_app

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
TOKEN = "dashboard-token"
T = TypeVar("T")
TICKET = "Hi, I was charged $99 twice last month (invoice INV-8821). Can I get a refund?"

if not CHROMIUM.exists():
    if os.environ.get("CI") == "true":
        raise RuntimeError("CI must install Debian's chromium for the browser test (.ci/run)")
    pytest.skip("Debian's chromium is not installed (apt-get install chromium)",
                allow_module_level=True)


@pytest.fixture
def served(database_url: str) -> Iterator[tuple[str, AgentRuntime]]:
    """The app on a free loopback port, in this process (its runtime resumes decided runs)."""
    with serving(database_url) as served:
        yield served


@pytest.fixture
def served_on_sqlite(sqlite_url: str) -> Iterator[tuple[str, AgentRuntime]]:
    """For what the page does, whatever the store: one of them is enough."""
    with serving(sqlite_url) as served:
        yield served


@pytest.fixture
def guarded(sqlite_url: str) -> Iterator[tuple[str, AgentRuntime]]:
    """The app as keel serve runs it beyond loopback: reads need the token too."""
    with serving(sqlite_url, guard_reads=True) as served:
        yield served


@contextmanager
def serving(database_url: str, *, guard_reads: bool = False) -> Iterator[tuple[str, AgentRuntime]]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with AgentRuntime(database_url) as runtime:
        app = create_app(runtime, token=TOKEN, guard_reads=guard_reads)
        server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port,
                                               log_level="warning"))
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        deadline = time.monotonic() + 20
        while not server.started:
            assert time.monotonic() < deadline, "the server never started"
            time.sleep(0.05)
        try:
            yield f"http://127.0.0.1:{port}", runtime
        finally:
            server.should_exit = True
            thread.join(10)


@contextmanager
def browser_page() -> Iterator[Page]:
    """A page in Debian's Chromium; screenshots go to test-artifacts/. (Playwright's sync API
    runs an event loop in this thread while it is open: start runs before.)"""
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--no-first-run"])
        try:
            yield browser.new_page()
        finally:
            browser.close()


def test_approve_a_refund_from_the_inbox_and_see_it_complete(
    served: tuple[str, AgentRuntime],
) -> None:
    base, runtime = served
    backend.REFUNDS.clear()
    waiting = runtime.run(triage_agent, TICKET)
    assert waiting.status is Status.WAITING
    with browser_page() as page:
        page.goto(f"{base}/#/approvals")
        card = page.locator(".approval")
        expect(card).to_contain_text("wants to call process_refund")
        expect(card.locator(".args")).to_contain_text("INV-8821")
        page.fill("#reviewer", "dana")
        page.fill("#token", TOKEN)
        page.click("#token-form button")
        card.locator("button.approve").click()
        expect(page.locator("#status")).to_have_text("COMPLETED", timeout=20_000)
        expect(page.locator("#output")).to_contain_text("refunded $99.00")
        expect(page.locator("#input")).to_contain_text("invoice INV-8821")
        page.screenshot(path=str(ARTIFACTS / "dashboard-approved.png"), full_page=True)
        page.goto(f"{base}/#/")
        expect(page.locator("table")).to_contain_text(waiting.execution_id)
        page.select_option("#status-filter", "WAITING")  # nothing waits any more
        expect(page.locator("table")).not_to_contain_text(waiting.execution_id)
        page.select_option("#status-filter", "COMPLETED")
        expect(page.locator("table")).to_contain_text(waiting.execution_id)
    assert [r["invoice_id"] for r in backend.REFUNDS] == ["INV-8821"]
    decision = next(a for a in runtime.store.approvals(waiting.execution_id))
    assert (decision.status, decision.reviewer) == ("approved", "dana")


def test_resolve_an_in_doubt_run_from_the_dashboard(
    served: tuple[str, AgentRuntime], database_url: str
) -> None:
    base, runtime = served
    execution_id = in_doubt_execution(database_url)
    worker = Worker(runtime, [refunder])  # goes on with the run once it is resolved
    working = threading.Thread(target=worker.run)
    working.start()
    try:
        with browser_page() as page:
            page.goto(f"{base}/#/in-doubt")
            card = page.locator(".doubt")
            expect(card).to_contain_text("wire_refund (call w1) was cut off mid-call")
            page.fill("#reviewer", "dana")
            page.fill("#token", TOKEN)
            page.click("#token-form button")
            card.locator(".result").fill("{not json")
            card.locator("button.record").click()
            expect(card.locator(".error")).not_to_be_empty()  # nothing was sent
            card.locator(".result").fill('"wired INV-8821"')
            card.locator("button.record").click()
            expect(page.locator("#status")).to_have_text("COMPLETED", timeout=20_000)
            expect(page.locator("#output")).to_contain_text("Refund: wired INV-8821")
            page.screenshot(path=str(ARTIFACTS / "dashboard-in-doubt-resolved.png"),
                            full_page=True)
    finally:
        worker.stop()
        working.join(30)
    assert REFUNDS == ["INV-8821"]
    assert runtime.store.execution(execution_id).status == Status.COMPLETED.value


def test_a_pipeline_shows_its_stages_and_a_run_is_cancelled_from_its_page(
    served: tuple[str, AgentRuntime], database_url: str
) -> None:
    from examples.support_pipeline.cross_framework import TICKET as PIPELINE_TICKET
    from examples.support_pipeline.cross_framework import pipeline

    base, _ = served
    with AgentRuntime(database_url, require_approval=["add_internal_note"],
                      auto_resume=False) as asking:
        pid = asking.run(pipeline, PIPELINE_TICKET).execution_id
    with browser_page() as page:
        page.goto(f"{base}/#/")
        expect(page.locator("table")).to_contain_text(pid)
        expect(page.locator("table")).not_to_contain_text(f"{pid}.0")  # on the pipeline's page
        page.click(f"a[href='#/executions/{pid}']")
        stages = page.locator("#stages")
        expect(stages).to_contain_text(f"{pid}.0")
        expect(stages.locator("tr")).to_have_count(4)  # the header and three stages
        expect(stages).to_contain_text("WAITING")
        stages.locator(f"a[href='#/executions/{pid}.1']").click()
        expect(page.locator("#parent")).to_have_text(pid)
        page.click("#parent")
        page.fill("#token", TOKEN)
        page.click("#token-form button")
        page.click("#cancel")
        expect(page.locator("#status")).to_have_text("CANCELLED", timeout=20_000)
        expect(page.locator("#cancel")).to_have_count(0)
        page.screenshot(path=str(ARTIFACTS / "dashboard-pipeline-cancelled.png"), full_page=True)
    assert served[1].store.execution(f"{pid}.2").status == Status.CANCELLED.value


def elsewhere(call: Callable[..., T], *args: Any) -> T:
    """`call` in another thread: keel's sync API refuses the thread Playwright's runs in."""
    with ThreadPoolExecutor(1) as thread:
        return thread.submit(call, *args).result()


def test_a_page_rides_out_an_outage_keeps_an_error_and_its_filter(
    served_on_sqlite: tuple[str, AgentRuntime],
) -> None:
    base, runtime = served_on_sqlite
    execution_id = runtime.run(triage_agent, TICKET).execution_id  # WAITING: the page polls
    detail = f"**/api/executions/{execution_id}"
    with browser_page() as page:
        missing: list[str] = []
        page.on("response", lambda r: missing.append(r.url) if r.status == 404 else None)
        page.goto(f"{base}/#/executions/{execution_id}")
        expect(page.locator("#status")).to_have_text("WAITING")
        page.click("#cancel")  # no token yet
        error = page.locator("#cancel + .error")
        expect(error).to_contain_text("This needs the API token keel serve printed")
        with page.expect_response(detail):  # refreshed, and the error is still there
            pass
        expect(error).to_contain_text("This needs the API token keel serve printed")

        page.route(detail, lambda route: route.abort())  # the server is down
        notice = page.locator("#notice")
        expect(notice).to_have_text("The server does not answer; retrying…")
        expect(page.locator("#status")).to_have_text("WAITING")  # what it showed stays
        page.unroute(detail)  # and back: the page goes on by itself
        expect(notice).to_be_hidden()

        page.fill("#token", TOKEN)  # typed, not saved with the button
        page.click("#cancel")
        expect(page.locator("#status")).to_have_text("CANCELLED")
        expect(page.locator("#token-note")).to_have_text("Saved.")

        page.goto(f"{base}/#/")
        page.focus("#status-filter")
        chosen = page.locator("#status-filter").element_handle()
        with page.expect_response("**/api/executions?stages=false"):  # refreshed
            pass
        assert chosen.evaluate("e => e.isConnected && e === document.activeElement")
    assert missing == []  # not even a favicon


def test_a_guarded_server_asks_for_the_token_and_says_why_a_run_stays_queued(
    guarded: tuple[str, AgentRuntime], sqlite_url: str
) -> None:
    base, runtime = guarded

    def unloadable() -> str:
        """A waiting run whose agent this server cannot import."""
        with AgentRuntime(sqlite_url, auto_resume=False) as gone:
            execution_id = gone.run(triage_agent, TICKET).execution_id
            with gone.store.transaction() as conn:
                conn.execute(update(EXECUTIONS).where(EXECUTIONS.c.id == execution_id).values(
                    agent_ref="myapp.gone:triage_agent"))
        return execution_id

    with browser_page() as page:
        page.goto(f"{base}/#/approvals")
        expect(page.locator("#view")).to_have_text(
            "This needs the API token keel serve printed: enter it at the top right.")
        expect(page.locator("#token")).to_be_focused()
        page.fill("#token", "tökén✓")
        page.press("#token", "Enter")
        expect(page.locator("#token-note")).to_have_text(
            "An API token is plain ASCII text: paste the one keel serve printed.")
        page.fill("#token", TOKEN)
        page.press("#token", "Enter")
        expect(page.locator("#token-note")).to_have_text("Saved.")
        expect(page.locator("#view")).to_contain_text("Nothing is waiting.")
        execution_id = elsewhere(unloadable)
        card = page.locator(".approval")  # the inbox refreshes itself
        expect(card).to_contain_text("wants to call process_refund", timeout=10_000)
        card.locator("button.approve").click()
        expect(page.locator("#status")).to_have_text("QUEUED")
        expect(page.locator("#stalled")).to_contain_text(
            "This server cannot resume it: The execution's agent was recorded as "
            "'myapp.gone:triage_agent'")
        expect(page.locator("#stalled")).to_contain_text(f"keel resume {execution_id} there")


def test_answer_a_pause_that_asks_for_a_value_from_the_inbox(
    served_on_sqlite: tuple[str, AgentRuntime],
) -> None:
    from adk_workflows import DONE, reply_flow

    base, runtime = served_on_sqlite
    DONE.clear()
    waiting = runtime.run(reply_flow, "late order")
    with browser_page() as page:
        page.goto(f"{base}/#/approvals")
        card = page.locator(".approval")
        expect(card).to_contain_text("asks for an answer: request_input")
        expect(card.locator(".args")).to_contain_text("Send this reply?")
        page.fill("#token", TOKEN)
        page.click("#token-form button")
        card.locator("button.respond").click()  # nothing typed: nothing is sent
        expect(card).to_contain_text("Type an answer, or approve to give none.")
        card.locator(".answer").fill("Ship it, and say sorry.")
        page.screenshot(path=str(ARTIFACTS / "dashboard-answer.png"), full_page=True)
        card.locator("button.respond").click()
        expect(page.locator("#status")).to_have_text("COMPLETED", timeout=20_000)
        expect(page.locator("#output")).to_contain_text("sent after Ship it, and say sorry.")
    assert DONE[-1] == ("send", "Ship it, and say sorry.")
    (decision,) = runtime.store.approvals(waiting.execution_id)
    assert (decision.status, decision.reviewer) == ("approved", "dashboard")
