"""Test-only fault injection: end the process abruptly at a named step.

Crash safety is a claim about every step of a rotation, so the tests kill the conductor at
each one. `SUNDIAL_FAULT_INJECT=rotate:<step>` makes `fault_point("rotate", "<step>")` call
`os._exit(137)` (what `kill -9` looks like to the parent: no cleanup, no flush, no finally).
Without the variable it is one dictionary lookup and does nothing.
"""

from __future__ import annotations

import os
import sys

ENV_VAR = "SUNDIAL_FAULT_INJECT"
EXIT_CODE = 137

ROTATION_STEPS = ("pause", "flush", "abort", "drain", "prepare", "mid_commit", "commit", "hooks", "persist",
                  "done")


def fault_point(area: str, step: str) -> None:
    wanted = os.environ.get(ENV_VAR)
    if wanted and wanted == f"{area}:{step}":
        sys.stderr.write(f"FAULT INJECTED at {area}:{step}: exiting with {EXIT_CODE}\n")
        sys.stderr.flush()
        os._exit(EXIT_CODE)
