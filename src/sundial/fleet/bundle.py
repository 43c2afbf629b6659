"""The satellite bundle: wheels made from this conductor's own installed packages.

``/api/app/satellite/core`` serves a ``.tar.gz`` holding

* ``wheels/sundial_ops-<version>-py3-none-any.whl``: the agent part of Sundial only
  (``sundial/__init__.py``, ``protocol.py``, ``logrows.py``, ``netpolicy/``, ``satellite/``), built from the
  running package, so an agent always matches its conductor and an editable checkout works too;
* one wheel per third-party distribution the agent imports, repacked from the installed files
  (found by reading the agent's own imports, then following ``Requires-Dist``);
* ``agent_setup.py`` (stdlib only) and ``manifest.json`` (version, Python, machine, C library).

Nothing is downloaded, which is the point: an air-gapped fleet installs from its conductor.
"""

from __future__ import annotations

import ast
import base64
import hashlib
import io
import json
import platform
import re
import sys
import tarfile
import time
import zipfile
from collections.abc import Iterable
from importlib import metadata
from pathlib import Path

import sundial
from sundial import __version__

AGENT_PARTS = ("__init__.py", "protocol.py", "logrows.py", "netpolicy", "satellite")
SETUP_SCRIPT = Path(__file__).with_name("agent_setup.py")
_REQ_NAME = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)")
_SKIP_DIST_INFO = ("INSTALLER", "REQUESTED", "direct_url.json", "RECORD")


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _wheel_name(name: str) -> str:
    return re.sub(r"[-_.]+", "_", name)


def agent_sources(package_dir: Path | None = None) -> list[tuple[str, Path]]:
    """``(archive name, file)`` of every agent source file."""
    root = package_dir or Path(sundial.__file__).resolve().parent
    files: list[tuple[str, Path]] = []
    for part in AGENT_PARTS:
        path = root / part
        found = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
        for file in found:
            if "__pycache__" in file.parts or file.suffix in (".pyc", ".pyo"):
                continue
            files.append((f"sundial/{file.relative_to(root).as_posix()}", file))
    return files


def imported_modules(files: Iterable[Path]) -> set[str]:
    """Top-level third-party modules the agent imports (stdlib and ``sundial`` left out)."""
    found: set[str] = set()
    for file in files:
        if file.suffix != ".py":
            continue
        tree = ast.parse(file.read_text(encoding="utf-8"), str(file))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                found.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                found.add(node.module.split(".")[0])
    return {m for m in found if m not in sys.stdlib_module_names and m not in ("sundial", "__future__")}


def _requirements(dist: metadata.Distribution) -> list[str]:
    """Names of the unconditional requirements (extras skipped; other markers kept, harmless)."""
    names = []
    for req in dist.requires or []:
        if "extra ==" in req.replace("extra==", "extra =="):
            continue
        match = _REQ_NAME.match(req)
        if match:
            names.append(match.group(1))
    return names


def dependency_closure(modules: Iterable[str]) -> list[metadata.Distribution]:
    """The installed distributions providing ``modules``, plus everything they require."""
    by_module = metadata.packages_distributions()
    todo = sorted({d for m in modules for d in by_module.get(m, [])} - {"sundial-ops"})
    seen: dict[str, metadata.Distribution] = {}
    while todo:
        name = todo.pop()
        key = _canonical(name)
        if key in seen or key == "sundial-ops":
            continue
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            continue  # a requirement whose marker excludes this Python: not installed, not needed
        seen[key] = dist
        todo.extend(_requirements(dist))
    return [seen[k] for k in sorted(seen)]


def _record_line(name: str, data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{name},sha256={digest},{len(data)}"


def _write_wheel(entries: list[tuple[str, bytes]], dist_info: str) -> bytes:
    """Zip ``entries`` plus a fresh RECORD (hashes recomputed, so the wheel is self-consistent)."""
    buffer = io.BytesIO()
    record = [_record_line(name, data) for name, data in entries] + [f"{dist_info}/RECORD,,"]
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in entries:
            archive.writestr(zipfile.ZipInfo(name, date_time=(2020, 1, 1, 0, 0, 0)), data)
        archive.writestr(f"{dist_info}/RECORD", "\n".join(record) + "\n")
    return buffer.getvalue()


def _wheel_tags(dist: metadata.Distribution) -> str:
    """``py-abi-platform`` of the installed wheel, read from its WHEEL file (compressed tag sets)."""
    text = dist.read_text("WHEEL") or ""
    tags = [line.split(":", 1)[1].strip() for line in text.splitlines() if line.startswith("Tag:")]
    parts = [sorted({t.split("-")[i] for t in tags}) for i in range(3)] if tags else [["py3"], ["none"], ["any"]]
    return "-".join(".".join(p) for p in parts)


def repack(dist: metadata.Distribution) -> tuple[str, bytes]:
    """Rebuild a wheel from an installed distribution's files (those inside site-packages)."""
    name, version = _wheel_name(dist.metadata["Name"]), dist.version
    entries: list[tuple[str, bytes]] = []
    dist_info = ""
    for file in dist.files or []:
        rel = file.as_posix()
        if rel.startswith("..") or "__pycache__" in rel or rel.endswith((".pyc", ".pyo")):
            continue
        if ".dist-info/" in rel:
            dist_info = rel.split("/", 1)[0]
            if rel.rsplit("/", 1)[-1] in _SKIP_DIST_INFO:
                continue
        path = Path(str(file.locate()))
        if path.is_file():
            entries.append((rel, path.read_bytes()))
    dist_info = dist_info or f"{name}-{version}.dist-info"
    return f"{name}-{version}-{_wheel_tags(dist)}.whl", _write_wheel(entries, dist_info)


def agent_wheel(requires: Iterable[str], package_dir: Path | None = None) -> tuple[str, bytes]:
    """The agent part of Sundial as ``sundial_ops-<version>-py3-none-any.whl``."""
    dist_info = f"sundial_ops-{__version__}.dist-info"
    entries = [(name, path.read_bytes()) for name, path in agent_sources(package_dir)]
    meta = ["Metadata-Version: 2.1", "Name: sundial-ops", f"Version: {__version__}",
            "Summary: Sundial satellite (worker agent)", "Requires-Python: >=3.11",
            *[f"Requires-Dist: {r}" for r in sorted(set(requires))]]
    entries += [
        (f"{dist_info}/METADATA", ("\n".join(meta) + "\n").encode()),
        (f"{dist_info}/WHEEL", b"Wheel-Version: 1.0\nGenerator: sundial\nRoot-Is-Purelib: true\nTag: py3-none-any\n"),
        (f"{dist_info}/entry_points.txt",
         b"[console_scripts]\nsundial-satellite = sundial.satellite.main:main\n"),
        (f"{dist_info}/top_level.txt", b"sundial\n"),
    ]
    return f"sundial_ops-{__version__}-py3-none-any.whl", _write_wheel(entries, dist_info)


def manifest() -> dict[str, str]:
    python = f"{sys.version_info[0]}.{sys.version_info[1]}"
    return {"version": __version__, "python": python, "machine": platform.machine(), "system": platform.system(),
            "libc": platform.libc_ver()[0], "built": str(int(time.time()))}


def fingerprint(package_dir: Path | None = None) -> str:
    """Changes whenever an agent source file changes, so a stale cached bundle is never served."""
    digest = hashlib.sha256(__version__.encode())
    for name, path in agent_sources(package_dir):
        stat = path.stat()
        digest.update(f"{name}:{stat.st_size}:{stat.st_mtime_ns}".encode())
    return digest.hexdigest()[:16]


def _add(archive: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mode, info.mtime = len(data), 0o644, int(time.time())
    archive.addfile(info, io.BytesIO(data))


def build_bundle(dest: Path, package_dir: Path | None = None) -> Path:
    """Write the bundle to ``dest`` (atomically) and return it."""
    sources = [path for _, path in agent_sources(package_dir)]
    deps = dependency_closure(imported_modules(sources))
    roots = {_canonical(d) for m in imported_modules(sources) for d in metadata.packages_distributions().get(m, [])}
    wheels = [agent_wheel([d.metadata["Name"] for d in deps if _canonical(d.metadata["Name"]) in roots],
                          package_dir)]
    wheels += [repack(dist) for dist in deps]
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(dest.name + ".tmp")
    with tarfile.open(tmp, "w:gz") as archive:
        for name, data in wheels:
            _add(archive, f"wheels/{name}", data)
        _add(archive, "agent_setup.py", SETUP_SCRIPT.read_bytes())
        _add(archive, "manifest.json", json.dumps(manifest(), indent=2).encode())
    tmp.replace(dest)
    return dest
