"""A trial: its random choices, its reference run, its faulted run and its verdicts.

Everything a trial does follows from its seed: the framework, the store, the fault point and
type, the order the agent processes, and which pass of the point fails (drawn among the passes
the crash-free reference run of the same seed made). `run_trials` runs a batch, a few trials
at a time, on one shared launcher.
"""

from __future__ import annotations

import os
import random
import shutil
import sys
import threading
import traceback
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from chaos.invariants import check
from chaos.launcher import Launcher
from chaos.observation import Fault, Observation
from chaos.scenario import Scenario
from chaos.workload import Order
from keel import Status
from keel.runtime._faults import POINTS

__all__ = [
    "FAULT_POINTS", "TrialPlan", "TrialResult", "available_stores", "batch_seeds", "run_trials",
]

FRAMEWORKS = ("openai", "langgraph", "adk")
FAULT_POINTS = (*POINTS, "model:call")  # model:call: inside the scripted model, mid-request
FAULTS = {"sqlite": ("kill", "stop"), "postgres": ("kill", "stop", "disconnect")}
WAKE_AFTER = (0.0, 0.5, 2.0)  # seconds a stopped process sleeps on after a takeover
# A heartbeat's passes depend on timing; a low one is reached in every run.
TIMED_POINTS = {"lease:renew": 2}


@dataclass(frozen=True)
class TrialPlan:
    seed: int
    framework: str
    store: str
    point: str
    kind: str

    @classmethod
    def from_seed(cls, seed: int, stores: tuple[str, ...]) -> TrialPlan:
        rng = random.Random(seed)
        store = rng.choice(stores)
        return cls(seed, rng.choice(FRAMEWORKS), store, rng.choice(FAULT_POINTS),
                   rng.choice(FAULTS[store]))

    @property
    def order(self) -> Order:
        return Order.from_seed(self.seed)

    @property
    def model_delay(self) -> float:
        """Runs last a few heartbeats only when a trial fails at one."""
        return 0.25 if self.point == "lease:renew" else 0.0

    def fault(self, reference: Observation) -> Fault:
        """The fault, at a pass of the point that the reference run made; at another point,
        drawn the same way, if the framework never passes this one (LangGraph's model turns
        are checkpoints, not `model:after_response`)."""
        rng = random.Random(self.seed * 7919 + 1)
        point = self.point if reference.passes[self.point] else rng.choice(
            [p for p in FAULT_POINTS if reference.passes[p]])
        passes = min(reference.passes[point], TIMED_POINTS.get(point, 1 << 30))
        return Fault(point, rng.randint(1, passes), self.kind,  # type: ignore[arg-type]
                     wake_after=rng.choice(WAKE_AFTER))


@dataclass
class TrialResult:
    plan: TrialPlan
    fault: Fault | None = None
    obs: Observation = field(default_factory=Observation)
    verdicts: dict[str, list[str]] = field(default_factory=dict)
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None and not any(self.verdicts.values())

    def violations(self) -> list[str]:
        found = [f"{name}: {v}" for name, vs in self.verdicts.items() for v in vs]
        return found + ([f"error: {self.error}"] if self.error else [])


def batch_seeds(seed: int, trials: int) -> list[int]:
    """The trials' own seeds, drawn from the batch's seed."""
    rng = random.Random(seed)
    return [rng.randrange(1, 10**9) for _ in range(trials)]


def run_trials(seeds: list[int], root: Path, *, stores: tuple[str, ...], parallel: int = 2,
               on_result: Callable[[TrialResult], None] | None = None) -> list[TrialResult]:
    """Run a trial per seed, `parallel` at a time; results in seed order."""
    root.mkdir(parents=True, exist_ok=True)
    launcher = Launcher(root / "launcher.log")
    references = _References(launcher, root / "references")
    try:
        with ThreadPoolExecutor(parallel) as pool:
            def one(seed: int) -> TrialResult:
                result = _trial(TrialPlan.from_seed(seed, stores), launcher, references, root)
                if on_result is not None:
                    on_result(result)
                return result

            return list(pool.map(one, seeds))
    finally:
        launcher.close()


def _trial(plan: TrialPlan, launcher: Launcher, references: _References,
           root: Path) -> TrialResult:
    result = TrialResult(plan)
    where = root / f"trial-{plan.seed}"
    shutil.rmtree(where, ignore_errors=True)  # a trial run again starts from nothing
    try:
        reference = references.get(plan.framework, plan.order, plan.model_delay)
        result.fault = plan.fault(reference)
        with _database(plan.store, where) as url:
            result.obs = Scenario(launcher, where, url, framework=plan.framework,
                                  order=plan.order, fault=result.fault,
                                  model_delay=plan.model_delay).run()
        result.verdicts = check(result.obs, reference)
    except Exception:
        result.error = traceback.format_exc(limit=3).strip().splitlines()[-1]
        (where / "error.txt").write_text(traceback.format_exc())
    if result.ok and not result.obs.problems:  # the others keep their logs and ledger
        shutil.rmtree(where, ignore_errors=True)
    return result


class _References:
    """The crash-free run of each (framework, order), made once and shared."""

    def __init__(self, launcher: Launcher, root: Path) -> None:
        self.launcher, self.root = launcher, root
        self._lock = threading.Lock()
        self._made: dict[tuple[str, Order, float], Observation] = {}
        self._making: dict[tuple[str, Order, float], threading.Lock] = {}

    def get(self, framework: str, order: Order, model_delay: float) -> Observation:
        key = (framework, order, model_delay)
        with self._lock:
            making = self._making.setdefault(key, threading.Lock())
        with making:
            if key not in self._made:
                where = self.root / f"{framework}-{order.number}-{uuid.uuid4().hex[:6]}"
                obs = Scenario(self.launcher, where, f"sqlite:///{where}/keel.db",
                               framework=framework, order=order, workers=1,
                               model_delay=model_delay).run()
                if obs.status != Status.COMPLETED.value or obs.lost or obs.problems:
                    raise RuntimeError(f"the reference run of {framework} ended {obs.status} "
                                       f"({obs.lost + obs.problems}); see {where}")
                shutil.rmtree(where, ignore_errors=True)
                self._made[key] = obs
        return self._made[key]


def postgres_admin_url() -> str:
    return os.environ.get("KEEL_TEST_POSTGRES_URL",
                          "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def available_stores() -> tuple[str, ...]:
    """SQLite and PostgreSQL, which CI must have; SQLite alone where PostgreSQL is absent."""
    import psycopg
    from sqlalchemy.engine import make_url

    url = make_url(postgres_admin_url()).set(drivername="postgresql")
    try:
        psycopg.connect(url.render_as_string(hide_password=False), connect_timeout=3).close()
    except psycopg.OperationalError as exc:
        if os.environ.get("CI") == "true":
            raise RuntimeError(f"PostgreSQL must be reachable in CI at {url}: {exc}") from exc
        print(f"keel chaos: PostgreSQL is not reachable ({exc}); SQLite only", file=sys.stderr)
        return ("sqlite",)
    return ("sqlite", "postgres")


@contextmanager
def _database(store: str, where: Path) -> Iterator[str]:
    """A fresh store for one trial: a SQLite file, or a PostgreSQL database dropped after."""
    if store == "sqlite":
        yield f"sqlite:///{where}/keel.db"
        return
    import psycopg
    from sqlalchemy.engine import make_url

    admin = make_url(postgres_admin_url())
    conninfo = admin.set(drivername="postgresql").render_as_string(hide_password=False)
    name = f"keel_chaos_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(conninfo, autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    try:
        yield admin.set(database=name).render_as_string(hide_password=False)
    finally:
        with psycopg.connect(conninfo, autocommit=True) as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
