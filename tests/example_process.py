"""Running an example as its README line runs it: a process of its own, offline (no model
keys, so every example answers on its scripted models), no terminal."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).parents[1]
_MODEL_KEYS = ("OPENAI_API_KEY", "GOOGLE_API_KEY")


def run_example(module: str, cwd: Path, database_url: str,
                *args: str) -> subprocess.CompletedProcess[str]:
    """`python -m module *args` in `cwd`, on the store at `database_url`."""
    path = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)
    env = {key: value for key, value in os.environ.items() if key not in _MODEL_KEYS}
    env.update(KEEL_DATABASE_URL=database_url, PYTHONPATH=path)
    return subprocess.run([sys.executable, "-m", module, *args], cwd=cwd, env=env,
                          stdin=subprocess.DEVNULL, capture_output=True, text=True,
                          timeout=120)
