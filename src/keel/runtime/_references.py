"""Finding an agent again in another process: `module:attribute` references.

An execution records where its agent lives, found by identity among the loaded modules (or, for
a script run as `__main__`, the script's path), so that resume needs no agent argument.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import sysconfig
from pathlib import Path
from types import ModuleType
from typing import Any

from .._errors import AgentNotFoundError

__all__ = ["find_reference", "load_agent", "resolve", "type_reference"]

def _dirs(*keys: str) -> tuple[str, ...]:
    """The directories, as given and resolved (module paths may use either form)."""
    paths = [sysconfig.get_path(k) for k in keys]
    return tuple({form for p in paths if p for form in (p, str(Path(p).resolve()))})


_STDLIB = _dirs("stdlib", "platstdlib")
_INSTALLED = _dirs("purelib", "platlib")
_NOT_USER_CODE = frozenset({
    # Installed packages that hold no user's agent, skipped so that a miss stays cheap;
    # `__mp_main__` is an alias of `__main__` that no other process can import.
    "__mp_main__", "keel", "agents", "openai", "mcp", "mcp_types", "pydantic", "pydantic_core",
    "sqlalchemy", "sqlmodel", "google", "langchain", "langchain_core", "langgraph", "langsmith",
    "httpx", "httpcore", "anyio", "starlette", "fastapi", "uvicorn", "typing_extensions",
    "opentelemetry", "grpc", "numpy", "pandas", "_pytest", "pytest", "pluggy", "psycopg",
})
_kinds: dict[str, int] = {}  # module name -> 0 user code, 1 an installed package, 2 neither
_found: dict[int, tuple[Any, str]] = {}


def find_reference(obj: Any) -> str | None:
    """`module:attribute` naming `obj` in a loaded module, or None if it has no such name.

    The user's own modules are searched first, then installed packages (an application may be
    installed as one); the standard library and known frameworks never hold a user's agent.
    A script run as `__main__` comes last among the user's modules: an agent it imported is
    found where it is defined, not under the script's name for it (a loop variable, say).
    """
    cached = _found.get(id(obj))
    if cached is not None and cached[0] is obj and _names(cached[1], obj):
        return cached[1]
    # Copies, not iterations: another thread may import meanwhile (a finalizer run by the
    # garbage collector mid-iteration did), and dict.copy() runs no Python code.
    modules = sorted(((name, module) for name, module in sys.modules.copy().items()
                      if module is not None), key=lambda item: item[0] == "__main__")
    for kind in (0, 1):
        for name, module in modules:
            if _kind(name, module) != kind:
                continue
            for attribute, value in vars(module).copy().items():
                if value is obj and not attribute.startswith("_"):
                    location = _module_reference(name, module)
                    if location is None:
                        break
                    reference = f"{location}:{attribute}"
                    if len(_found) > 1024:  # agents built per request must not pile up here
                        _found.clear()
                    _found[id(obj)] = (obj, reference)
                    return reference
    return None


def _names(reference: str, obj: Any) -> bool:
    """Whether `reference`, found earlier, still names `obj` (a name may be bound again)."""
    location, _, attribute = reference.rpartition(":")
    module = sys.modules.get("__main__" if location.endswith(".py") else location)
    return getattr(module, attribute, None) is obj


def resolve(reference: str) -> Any:
    """The object `module:qualname` (or `/path/to/script.py:qualname`) names; raises
    ImportError or AttributeError when it cannot be found here."""
    location, _, qualname = reference.rpartition(":")
    target: Any = _load_module(location)
    for part in qualname.split("."):
        target = getattr(target, part)
    return target


def load_agent(reference: str, *, recorded: bool = False) -> Any:
    """The agent a reference names (a `recorded` one: an execution's, to resume); raises
    AgentNotFoundError saying what to do when it cannot be loaded here."""
    try:
        return resolve(reference)
    except Exception as exc:
        importable = "importable (run from the project directory or install it)"
        if recorded:
            raise AgentNotFoundError(
                f"The execution's agent was recorded as {reference!r}, which cannot be loaded "
                f"here ({exc}). Make that module {importable}, or pass the agent: "
                "runtime.resume(execution_id, agent=...)."
            ) from exc
        raise AgentNotFoundError(
            f"Cannot load the agent {reference!r} ({exc}). Name it as module:attribute (or "
            f"path/to/script.py:attribute), and make that module {importable}."
        ) from exc


def type_reference(cls: type) -> str | None:
    """`module:qualname` for a class that can be imported again, else None."""
    module = getattr(cls, "__module__", None)
    qualname = getattr(cls, "__qualname__", "")
    if not module or "<locals>" in qualname or module == "builtins":
        return None
    if module == "__main__":
        main = sys.modules["__main__"]
        file = getattr(main, "__file__", None)
        return f"{Path(file).resolve()}:{qualname}" if file else None
    return f"{module}:{qualname}"


def _module_reference(name: str, module: ModuleType) -> str | None:
    """How another process finds `module` again; None for one it cannot (a REPL's)."""
    if name == "__main__":
        spec = getattr(module, "__spec__", None)
        if spec is not None and spec.name:  # run with python -m: importable by name
            return str(spec.name)
        file = getattr(module, "__file__", None)
        return str(Path(file).resolve()) if file else None
    return name


def _load_module(location: str) -> ModuleType:
    if not location.endswith(".py"):
        return importlib.import_module(location)
    main = sys.modules.get("__main__")
    if main is not None and getattr(main, "__file__", None) and \
            Path(main.__file__).resolve() == Path(location):  # type: ignore[arg-type]
        return main
    name = f"_keel_script_{abs(hash(location))}"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, location)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {location}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def _kind(name: str, module: ModuleType) -> int:
    kind = _kinds.get(name)
    if kind is None:
        path = getattr(module, "__file__", None) or ""
        if name.partition(".")[0] in _NOT_USER_CODE or not path:
            kind = 2 if name != "__main__" else 0
        elif path.startswith(_INSTALLED):
            kind = 1
        else:
            kind = 2 if path.startswith(_STDLIB) else 0
        _kinds[name] = kind
    return kind
