"""Set up a Sundial satellite in its own virtual environment from a conductor's bundle.

This file travels inside the bundle served by ``/api/app/satellite/core`` and runs on the new
server with its own ``python3``, so it uses the standard library only and imports nothing of
Sundial. The bundle holds wheels made from the conductor's own installed packages: when the
new server has the same Python version, machine and C library, they are unpacked straight into
a pip-less virtual environment (no network, no compiler, no pip needed: air-gap friendly);
otherwise pip fetches matching builds of the third-party dependencies from the package index.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import venv
import zipfile
from pathlib import Path

CHECK = "import sundial.satellite.agent, sundial.satellite.daemon"
LAUNCHER = """#!{python}
# Sundial satellite launcher (written by the installer).
import sys

from sundial.satellite.main import main

if __name__ == "__main__":
    sys.exit(main(default_config={config!r}))
"""


def say(message: str) -> None:
    print(f"sundial-satellite: {message}", flush=True)


def this_host() -> dict[str, str]:
    return {"python": f"{sys.version_info[0]}.{sys.version_info[1]}", "machine": platform.machine(),
            "system": platform.system(), "libc": platform.libc_ver()[0]}


def same_platform(manifest: dict[str, str]) -> bool:
    here = this_host()
    return all(manifest.get(key) == value for key, value in here.items())


def venv_python(target: Path) -> Path:
    return target / "bin" / "python"


def site_packages(target: Path) -> Path:
    code = "import sysconfig; print(sysconfig.get_paths()['purelib'])"
    out = subprocess.run([str(venv_python(target)), "-c", code], check=True, capture_output=True, text=True)
    return Path(out.stdout.strip())


def unpack(wheels: list[Path], target: Path) -> None:
    """A wheel is a zip of files relative to site-packages: extracting it installs it."""
    for wheel in wheels:
        with zipfile.ZipFile(wheel) as archive:
            for name in archive.namelist():
                if name.startswith("/") or ".." in Path(name).parts:
                    raise SystemExit(f"refusing unsafe path {name!r} in {wheel.name}")
            archive.extractall(target)


def works(target: Path) -> bool:
    probe = subprocess.run([str(venv_python(target)), "-c", CHECK], capture_output=True, text=True)
    if probe.returncode != 0:
        say("the bundled packages do not load here: " + (probe.stderr.strip().splitlines() or ["?"])[-1])
    return probe.returncode == 0


def offline_install(bundle: Path, target: Path) -> bool:
    venv.EnvBuilder(with_pip=False, symlinks=os.name != "nt", clear=True).create(target)
    unpack(sorted((bundle / "wheels").glob("*.whl")), site_packages(target))
    return works(target)


def online_install(bundle: Path, target: Path) -> bool:
    say("installing dependencies for this platform from the package index")
    venv.EnvBuilder(with_pip=True, symlinks=os.name != "nt", clear=True).create(target)
    agent = sorted((bundle / "wheels").glob("sundial_ops-*.whl"))
    pip = [str(venv_python(target)), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    return subprocess.run([*pip, *map(str, agent)]).returncode == 0 and works(target)


def write_launcher(home: Path, target: Path) -> Path:
    path = target / "bin" / "sundial-satellite"
    path.write_text(LAUNCHER.format(python=venv_python(target), config=str(home / "config.json")), encoding="utf-8")
    path.chmod(0o755)
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bundle", type=Path, default=Path(__file__).resolve().parent)
    parser.add_argument("--dir", type=Path, required=True, help="install folder (venv/, config.json, logs/)")
    args = parser.parse_args(argv)
    home = args.dir.resolve()
    target = home / "venv"
    home.mkdir(parents=True, exist_ok=True)
    manifest = json.loads((args.bundle / "manifest.json").read_text(encoding="utf-8"))
    installed = same_platform(manifest) and offline_install(args.bundle, target)
    if not installed:
        shutil.rmtree(target, ignore_errors=True)
        installed = online_install(args.bundle, target)
    if not installed:
        say("installation failed")
        return 1
    launcher = write_launcher(home, target)
    say(f"Sundial satellite {manifest.get('version', '?')} installed: {launcher}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
