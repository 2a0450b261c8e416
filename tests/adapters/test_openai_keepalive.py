"""Sync runs, one after another, against a real OpenAI-compatible server that keeps
connections alive: the SDK's HTTP client pools connections on the event loop that opened
them, so keel's sync entry points must keep using one loop per thread, as Runner.run_sync does.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from agents import Agent, function_tool
from agents.models import _openai_shared

from keel import AgentRuntime, Status


def _reply(body: dict[str, Any]) -> dict[str, Any]:
    answered = [i for i in body["input"] if i.get("type") == "function_call_output"]
    output: dict[str, Any] = (
        {"id": "msg", "type": "message", "role": "assistant", "status": "completed",
         "content": [{"type": "output_text", "text": f"done: {answered[0]['output']}",
                      "annotations": []}]}
        if answered else
        {"id": "fc", "type": "function_call", "call_id": "call_1", "name": "ping",
         "arguments": "{}", "status": "completed"})
    return {"id": "resp", "object": "response", "created_at": 0, "model": body["model"],
            "output": [output], "parallel_tool_calls": True, "tool_choice": "auto",
            "tools": [], "status": "completed"}


class _KeepAlive(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # connections stay open between requests
    timeout = 5

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        data = json.dumps(_reply(body)).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def keepalive_server(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _KeepAlive)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                              daemon=True)
    thread.start()
    monkeypatch.setenv("OPENAI_BASE_URL", f"http://127.0.0.1:{server.server_port}/v1")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    monkeypatch.setattr(_openai_shared, "_default_openai_client", None)
    monkeypatch.setattr(_openai_shared, "_default_openai_key", None)
    monkeypatch.setattr(_openai_shared, "_use_responses_by_default", True)
    try:
        yield server.server_address[0]
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@function_tool
def ping() -> str:
    """Ping."""
    return "pong"


def test_sync_runs_in_a_row_share_pooled_connections(
    keepalive_server: str, sqlite_url: str
) -> None:
    agent = Agent(name="pinger", model="gpt-keel-test", tools=[ping])
    with AgentRuntime(sqlite_url, require_approval=["ping"], auto_resume=False) as runtime:
        for _ in range(3):
            waiting = runtime.run(agent, "ping please")
            assert waiting.status is Status.WAITING, waiting.error
            runtime.handle(waiting.execution_id).approve()
            final = runtime.resume(waiting.execution_id)
            assert final.status is Status.COMPLETED, final.error
            assert final.output == "done: pong"


def test_background_and_sync_runs_in_one_process(keepalive_server: str, sqlite_url: str) -> None:
    agent = Agent(name="pinger", model="gpt-keel-test", tools=[ping])
    with AgentRuntime(sqlite_url) as runtime:
        for _ in range(2):
            assert runtime.start(agent, "ping").join(timeout=30).output == "done: pong"
            assert runtime.run(agent, "ping").output == "done: pong"
