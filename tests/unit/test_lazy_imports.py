"""Start-up imports only what serving needs: the heavy libraries of rarely used features load on
first use (see docs/architecture.md, "Lazy imports"). Easy to undo by one module-level import,
so this checks a fresh interpreter after importing the conductor the way `sundial start` does."""

from __future__ import annotations

import json
import subprocess
import sys

# Imported only by the feature that needs it: schema upgrades of an existing database, the web
# UI's first page, the PostgreSQL engine, e-mail delivery, expressions (conditions, monitors,
# templated hooks), outbound requests (web hooks: httpx, httpcore and, through httpx's command
# line, rich and pygments), SQLAlchemy's ORM (only Core is used; sundial.storage.asyncengine),
# cryptography's X.509 layer (ssl checks an existing HTTPS pair; see sundial.tls), the satellite
# bundle builder (the first install).
LAZY = ["alembic", "jinja2", "sundial.web.routes", "sqlalchemy.dialects.postgresql", "aiosmtplib",
        "markdown_it", "pyjexl", "httpx", "httpcore", "rich", "pygments", "sundial.netpolicy.transport",
        "sqlalchemy.orm", "sqlalchemy.ext.asyncio.session", "cryptography.x509",
        "sundial.fleet.bundle", "tarfile"]


def _loaded_after(code: str) -> set[str]:
    probe = f"{code}\nimport json, sys\nprint(json.dumps(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, check=True)
    return set(json.loads(out.stdout.strip().splitlines()[-1]))


def test_importing_the_server_leaves_rarely_used_libraries_unloaded() -> None:
    loaded = _loaded_after("import sundial.cli, sundial.server")
    assert sorted(set(LAZY) & loaded) == []


def test_building_the_app_on_sqlite_leaves_them_unloaded(tmp_path) -> None:  # type: ignore[no-untyped-def]
    code = (
        "import asyncio\n"
        "from sundial.config import load_config, ensure_secret_key\n"
        "from sundial.app import Conductor, make_log_manager\n"
        f"config = load_config(__import__('pathlib').Path({str(tmp_path)!r}), {{}})\n"
        "ensure_secret_key(config)\n"
        "async def main():\n"
        "    conductor = Conductor(config, make_log_manager(config))\n"
        "    await conductor.prepare()\n"
        "    conductor.asgi()\n"
        "    await conductor.services.storage.close()\n"
        "asyncio.run(main())\n"
    )
    loaded = _loaded_after(code)
    assert sorted(set(LAZY) & loaded) == []


def test_the_deferred_asyncio_package_still_offers_the_orm_parts_on_request() -> None:
    """sundial.storage defers sqlalchemy.ext.asyncio's __init__; other code asking for it gets it whole."""
    loaded = _loaded_after(
        "import sundial.storage, sys\n"
        "from sqlalchemy.ext.asyncio import AsyncConnection, create_async_engine\n"
        "assert 'sqlalchemy.orm' not in sys.modules\n"
        "from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker\n"
        "import sqlalchemy.ext.asyncio as package\n"
        "assert package.AsyncEngine is package.engine.AsyncEngine and AsyncSession.__name__ == 'AsyncSession'\n")
    assert "sqlalchemy.orm" in loaded


def test_starting_with_an_existing_https_pair_leaves_x509_unloaded(tmp_path) -> None:  # type: ignore[no-untyped-def]
    prepare = ("from pathlib import Path\n"
               "from sundial.config import load_config\n"
               "from sundial.tls import prepare_tls\n"
               f"config = load_config(Path({str(tmp_path)!r}), {{'secret_key': 'k'}}, environ={{}})\n"
               "files = prepare_tls(config)\n"
               "assert files is not None\n")
    assert "cryptography.x509" in _loaded_after(prepare)  # first start: the self-signed pair is written
    assert "cryptography.x509" not in _loaded_after(prepare)  # later starts: ssl checks it
