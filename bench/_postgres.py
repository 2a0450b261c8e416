"""A throwaway PostgreSQL database for the benchmark, created and dropped around one block."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

__all__ = ["BenchDatabase", "Unreachable", "bench_database", "empty_keel_tables"]


class Unreachable(Exception):
    """The server did not answer, or psycopg is not installed."""


@dataclass(frozen=True)
class BenchDatabase:
    url: str
    """SQLAlchemy URL, for keel's Store."""
    conninfo: str
    """libpq connection string, for raw psycopg."""
    server_version: str


@contextmanager
def bench_database(admin_url: str) -> Iterator[BenchDatabase]:
    """Create `keel_bench_<random>` through `admin_url`, yield it, drop it (even on errors)."""
    try:
        import psycopg
        from sqlalchemy.engine import make_url
    except ImportError as exc:
        raise Unreachable(
            f"psycopg is not installed ({exc}); pip install 'keel[postgres]'"
        ) from exc
    admin = make_url(admin_url)
    admin_conninfo = admin.set(drivername="postgresql").render_as_string(hide_password=False)
    try:
        connection = psycopg.connect(admin_conninfo, autocommit=True, connect_timeout=3)
    except psycopg.OperationalError as exc:
        reason = " ".join(str(exc).split())
        raise Unreachable(f"{admin.render_as_string()} did not answer: {reason}") from exc
    name = f"keel_bench_{uuid.uuid4().hex[:12]}"
    with connection:
        version = str(connection.execute("SHOW server_version").fetchone()[0])  # type: ignore[index]
        connection.execute(f'CREATE DATABASE "{name}"')
        try:
            database = admin.set(database=name)
            yield BenchDatabase(
                url=database.render_as_string(hide_password=False),
                conninfo=database.set(drivername="postgresql").render_as_string(
                    hide_password=False
                ),
                server_version=version,
            )
        finally:
            connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def empty_keel_tables(conninfo: str) -> None:
    """Remove every execution (and what was recorded about it) between measurements."""
    import psycopg

    with psycopg.connect(conninfo, autocommit=True) as connection:
        connection.execute("TRUNCATE keel_executions, keel_steps, keel_events, keel_approvals")
