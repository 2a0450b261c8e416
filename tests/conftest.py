"""Shared fixtures: isolated stores on SQLite and (in CI, or wherever it answers) PostgreSQL."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest

# Tests run offline on scripted models and never talk to tracing back ends.
os.environ["OPENAI_AGENTS_DISABLE_TRACING"] = "1"
os.environ["LANGSMITH_TRACING"] = "false"
os.environ.pop("OPENAI_API_KEY", None)

from keel import AgentRuntime

POSTGRES_URL = os.environ.get(
    "KEEL_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


@pytest.fixture
def sqlite_url(tmp_path: object) -> str:
    return f"sqlite:///{tmp_path}/keel.db"


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A fresh PostgreSQL database for one test, dropped afterwards."""
    try:
        import psycopg
        from sqlalchemy.engine import make_url
    except ImportError:  # pragma: no cover - the postgres extra is part of make test
        pytest.skip("psycopg is not installed (pip install 'keel[postgres]')")
    admin = make_url(POSTGRES_URL)
    conninfo = admin.set(drivername="postgresql").render_as_string(hide_password=False)
    try:
        connection = psycopg.connect(conninfo, autocommit=True, connect_timeout=3)
    except psycopg.OperationalError as exc:
        if os.environ.get("CI") == "true":
            pytest.fail(f"PostgreSQL must be reachable in CI at {POSTGRES_URL}: {exc}")
        pytest.skip(f"PostgreSQL is not reachable at {POSTGRES_URL} (set KEEL_TEST_POSTGRES_URL)")
    name = f"keel_test_{uuid.uuid4().hex[:12]}"
    with connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    try:
        yield admin.set(database=name).render_as_string(hide_password=False)
    finally:
        with psycopg.connect(conninfo, autocommit=True) as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest) -> str:
    """Each test using this runs once on SQLite and once on PostgreSQL."""
    return str(request.getfixturevalue(f"{request.param}_url"))


@pytest.fixture
def runtime(database_url: str) -> Iterator[AgentRuntime]:
    with AgentRuntime(database_url) as runtime:
        yield runtime
