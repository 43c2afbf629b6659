"""`sundial key ...` in-process (typer's runner): verify, rotate, satellite-token, show-pending."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from typer.testing import CliRunner

from sundial.cli import app

runner = CliRunner()
# Whatever the developer's shell holds must not pick the key (None unsets a variable).
CLEAN: dict[str, str | None] = {name: None for name in ("SUNDIAL_secret_key", "SUNDIAL_SECRET_KEY_FILE",
                                                        "XYOPS_secret_key", "SUNDIAL_HOME")}


def _home(tmp_path: Path, key: str | None) -> Path:
    home = tmp_path / "home"
    (home / "conf").mkdir(parents=True)
    if key is not None:
        (home / "conf" / "overrides.json").write_text(json.dumps({"secret_key": key}))
    return home


def _key(home: Path) -> str:
    return str(json.loads((home / "conf" / "overrides.json").read_text())["secret_key"])


def test_rotate_and_verify_with_a_key_sundial_may_rewrite(tmp_path: Path) -> None:
    home = _home(tmp_path, "cli-test-key")
    missing = runner.invoke(app, ["key", "verify", "--home", str(home)], env=CLEAN)
    assert missing.exit_code == 1 and "Integrity canary not found" in missing.output
    rotated = runner.invoke(app, ["key", "rotate", "--home", str(home), "--yes"], env=CLEAN)
    assert rotated.exit_code == 0, rotated.output
    assert "saved to" in rotated.output and "(epoch 2)" in rotated.output
    new_key = _key(home)
    assert new_key != "cli-test-key" and len(new_key) == 64 and new_key not in rotated.output
    verified = runner.invoke(app, ["key", "verify", "--home", str(home)], env=CLEAN)
    assert verified.exit_code == 0 and "OK: it opens the integrity canary (epoch 2)" in verified.output
    wrong = tmp_path / "wrong.key"
    wrong.write_text("cli-test-key\n")
    refused = runner.invoke(app, ["key", "verify", "--home", str(home), "--key-file", str(wrong)], env=CLEAN)
    assert refused.exit_code == 1 and "MASTER KEY INTEGRITY CHECK FAILED" in refused.output
    token = runner.invoke(app, ["key", "satellite-token", "srv01", "--force", "--home", str(home)], env=CLEAN)
    assert token.output.strip() == hashlib.sha256(("srv01" + new_key).encode()).hexdigest()
    pending = runner.invoke(app, ["key", "show-pending", "--home", str(home)], env=CLEAN)
    assert pending.exit_code == 1 and "No key rotation is pending." in pending.output


def test_rotate_with_an_env_key_needs_the_new_key_and_leaves_it_pending(tmp_path: Path) -> None:
    home = _home(tmp_path, None)
    env = {**CLEAN, "SUNDIAL_secret_key": "env-old-key"}
    first = runner.invoke(app, ["key", "rotate", "--home", str(home), "--yes"], env=env)
    assert first.exit_code == 1 and "--new-key-file" in first.output
    new_file = tmp_path / "new.key"
    new_file.write_text("ef" * 32 + "\n")
    rotated = runner.invoke(app, ["key", "rotate", "--home", str(home), "--yes", "--new-key-file", str(new_file)],
                            env=env)
    assert rotated.exit_code == 0, rotated.output
    assert "point your key setting" in rotated.output and "ef" * 32 not in rotated.output
    stale = runner.invoke(app, ["key", "verify", "--home", str(home)], env=env)
    assert stale.exit_code == 1 and "is pending" in stale.output
    pending = runner.invoke(app, ["key", "show-pending", "--home", str(home)], env=env)
    assert pending.exit_code == 0 and pending.output.strip() == "ef" * 32
    fresh = runner.invoke(app, ["key", "verify", "--home", str(home)], env={**CLEAN, "SUNDIAL_secret_key": "ef" * 32})
    assert fresh.exit_code == 0
