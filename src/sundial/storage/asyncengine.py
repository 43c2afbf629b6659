"""SQLAlchemy's asyncio engine without its ORM session layer.

Why: `import sqlalchemy.ext.asyncio` runs that package's `__init__`, which imports `AsyncSession`
and with it the whole ORM (~6.5 MiB resident, ~50 modules). Sundial uses SQLAlchemy Core only:
the engine and connection classes live in `sqlalchemy.ext.asyncio.engine`, which needs no ORM.

So the package module is created from its spec with its `__init__` deferred and the engine and
result names copied in; the first other name asked of it (`AsyncSession`, `async_sessionmaker`,
...) runs the real `__init__` in place. Code that imports the package for the ORM parts (a test,
a plugin) still gets all of it, only later. Importing this module first is what makes
the deferral happen; `sundial.storage.engine` does.
"""

from __future__ import annotations

import importlib
import importlib.util
import pkgutil
import sys
from typing import Any

PACKAGE = "sqlalchemy.ext.asyncio"
# The names the package's __init__ takes from these two submodules (SQLAlchemy 2.x).
_EAGER = {"engine": ("AsyncConnection", "AsyncEngine", "AsyncTransaction", "async_engine_from_config",
                     "create_async_engine", "create_async_pool_from_url"),
          "result": ("AsyncMappingResult", "AsyncResult", "AsyncScalarResult", "AsyncTupleResult")}


def _defer_package_init() -> None:
    """Put a package module with a deferred `__init__` in sys.modules (no-op if already imported)."""
    if PACKAGE in sys.modules:
        return
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or spec.loader is None:
        return
    package = importlib.util.module_from_spec(spec)
    loader = spec.loader
    pending = [True]
    # `from . import exc` asks the package first; a submodule's name must fall through to the import.
    submodules = {info.name for info in pkgutil.iter_modules(spec.submodule_search_locations)}

    def __getattr__(name: str) -> Any:  # noqa: N807 (PEP 562 module hook)
        if pending and name not in submodules:
            pending.clear()
            loader.exec_module(package)
            if name in package.__dict__:
                return package.__dict__[name]
        raise AttributeError(f"module {PACKAGE!r} has no attribute {name!r}")

    package.__getattr__ = __getattr__  # type: ignore[method-assign]
    sys.modules[PACKAGE] = package
    parent, _, child = PACKAGE.rpartition(".")
    setattr(importlib.import_module(parent), child, package)
    for submodule, names in _EAGER.items():
        source = importlib.import_module(f"{PACKAGE}.{submodule}")
        for name in names:
            if hasattr(source, name):
                setattr(package, name, getattr(source, name))


_defer_package_init()

from sqlalchemy.ext.asyncio.engine import AsyncConnection, AsyncEngine, create_async_engine  # noqa: E402

__all__ = ["AsyncConnection", "AsyncEngine", "create_async_engine"]
