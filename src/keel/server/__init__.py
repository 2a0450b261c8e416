"""keel's HTTP API (served by `keel serve`): executions, events, the approvals inbox.

    from keel.server import create_app
    app = create_app(AgentRuntime(), token="...")   # any ASGI server runs it
"""

from ._app import create_app

__all__ = ["create_app"]
