"""Shared fixtures: isolated stores on SQLite and (in CI, or wherever it answers) PostgreSQL."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor

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


class _PostgresDatabases:
    """Fresh PostgreSQL databases, each made while the test before it runs.

    CREATE DATABASE takes the server about a quarter of a second, once for every PostgreSQL test:
    made one ahead in a background thread, and dropped there afterwards, it overlaps the tests
    instead of adding to the suite's time.
    """

    def __init__(self) -> None:
        from sqlalchemy.engine import make_url

        self._admin = make_url(POSTGRES_URL)
        self._conninfo = self._admin.set(drivername="postgresql").render_as_string(
            hide_password=False)
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="keel-test-pg")
        self._next: Future[str] | None = None
        self._drops: list[Future[None]] = []

    def take(self) -> str:
        """The URL of a new, empty database; skips (fails in CI) where no server answers."""
        import psycopg

        made = self._next or self._worker.submit(self._create)
        self._next = self._worker.submit(self._create)
        try:
            name = made.result()
        except psycopg.OperationalError as exc:
            if os.environ.get("CI") == "true":
                pytest.fail(f"PostgreSQL must be reachable in CI at {POSTGRES_URL}: {exc}")
            pytest.skip(f"PostgreSQL is not reachable at {POSTGRES_URL} "
                        "(set KEEL_TEST_POSTGRES_URL)")
        return self._admin.set(database=name).render_as_string(hide_password=False)

    def drop(self, url: str) -> None:
        from sqlalchemy.engine import make_url

        self._drops.append(self._worker.submit(self._drop, str(make_url(url).database)))

    def close(self) -> None:
        self._worker.shutdown(wait=True)
        if self._next is not None and self._next.exception() is None:
            self._drop(self._next.result())  # made for a test that never came
        for dropped in self._drops:
            dropped.result()  # a database that could not be dropped is an error

    def _create(self) -> str:
        import psycopg

        name = f"keel_test_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(self._conninfo, autocommit=True, connect_timeout=3) as connection:
            connection.execute(f'CREATE DATABASE "{name}"')
        return name

    def _drop(self, name: str) -> None:
        import psycopg

        with psycopg.connect(self._conninfo, autocommit=True) as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def _postgres_databases() -> Iterator[_PostgresDatabases]:
    try:
        import psycopg  # noqa: F401
    except ImportError:  # pragma: no cover - the postgres extra is part of make test
        pytest.skip("psycopg is not installed (pip install 'keel[postgres]')")
    databases = _PostgresDatabases()
    yield databases
    databases.close()


@pytest.fixture
def postgres_url(_postgres_databases: _PostgresDatabases) -> Iterator[str]:
    """A fresh PostgreSQL database for one test, dropped afterwards."""
    url = _postgres_databases.take()
    yield url
    _postgres_databases.drop(url)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest) -> str:
    """Each test using this runs once on SQLite and once on PostgreSQL."""
    return str(request.getfixturevalue(f"{request.param}_url"))


@pytest.fixture
def runtime(database_url: str) -> Iterator[AgentRuntime]:
    with AgentRuntime(database_url) as runtime:
        yield runtime


@pytest.fixture(scope="module")
def new_postgres_url(_postgres_databases: _PostgresDatabases) -> Iterator[Callable[[], str]]:
    """For module-scoped fixtures: makes fresh PostgreSQL databases, dropped after the module.
    A call skips (fails in CI) where no server answers, as postgres_url does."""
    made: list[str] = []

    def new() -> str:
        made.append(_postgres_databases.take())
        return made[-1]

    yield new
    for url in made:
        _postgres_databases.drop(url)

