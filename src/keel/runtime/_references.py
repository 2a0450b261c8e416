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

__all__ = ["find_reference", "load_reference", "type_reference"]

_LIBRARY_DIRS = tuple(
    str(Path(p).resolve()) for p in {sysconfig.get_path("stdlib"), sysconfig.get_path("purelib"),
                                     sysconfig.get_path("platlib")} if p
)
_user_module: dict[str, bool] = {}
_found: dict[int, tuple[Any, str]] = {}


def find_reference(obj: Any) -> str | None:
    """`module:attribute` naming `obj` in a loaded user module, or None if it has no name."""
    cached = _found.get(id(obj))
    if cached is not None and cached[0] is obj:
        return cached[1]
    modules = [(n, m) for n, m in list(sys.modules.items()) if m is not None]
    # The user's own modules first; installed packages only when those do not name it.
    for user_first in (True, False):
        for name, module in modules:
            if _is_user_module(name, module) is not user_first or name.startswith("keel"):
                continue
            for attribute, value in list(vars(module).items()):
                if value is obj and not attribute.startswith("_"):
                    reference = f"{_module_reference(name, module)}:{attribute}"
                    _found[id(obj)] = (obj, reference)
                    return reference
    return None


def load_reference(reference: str) -> Any:
    """The object a reference names; raises AgentNotFoundError with what was recorded."""
    location, _, attribute = reference.rpartition(":")
    try:
        module = _load_module(location)
        return getattr(module, attribute)
    except Exception as exc:
        raise AgentNotFoundError(
            f"The execution's agent was recorded as {reference!r}, which cannot be loaded "
            f"here ({exc}). Make that module importable (run from the project directory or "
            "install it), or pass the agent: runtime.resume(execution_id, agent=...)."
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


def _module_reference(name: str, module: ModuleType) -> str:
    if name == "__main__":
        spec = getattr(module, "__spec__", None)
        if spec is not None and spec.name:  # run with python -m: importable by name
            return str(spec.name)
        return str(Path(module.__file__ or "").resolve())
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


def _is_user_module(name: str, module: ModuleType) -> bool:
    known = _user_module.get(name)
    if known is None:
        file = getattr(module, "__file__", None)
        known = bool(file) and not str(Path(file).resolve()).startswith(_LIBRARY_DIRS)  # type: ignore[arg-type]
        _user_module[name] = known
    return known
