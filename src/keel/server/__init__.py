"""keel's HTTP API (served by `keel serve`): executions, events, the approvals inbox.

    from keel.server import create_app
    app = create_app(AgentRuntime(), token="...")   # any ASGI server runs it
    # Reachable from other machines: reads need the token too (keel serve --host 0.0.0.0 does).
    app = create_app(AgentRuntime(), token="...", guard_reads=True)
"""

from ._app import create_app

__all__ = ["create_app"]
