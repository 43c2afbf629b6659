"""``python -m sundial.satellite.plugins <name>``: run one built-in plugin as a job process.

Whatever goes wrong inside a plugin ends as a final wire-protocol line with a code and a reason,
never as a bare traceback, so the job result says what failed; the traceback still goes to stderr
(and so into the job log) for whoever has to fix it.
"""

from __future__ import annotations

import importlib
import sys
import traceback

from sundial.satellite.plugins import BUILTINS
from sundial.satellite.plugins.wire import PluginError, finish, read_job


def main(argv: list[str]) -> int:
    """Run the named plugin; the exit status is 0 once a result was reported, 2 on bad usage."""
    if len(argv) != 1 or argv[0] not in BUILTINS:
        sys.stderr.write(f"usage: python -m sundial.satellite.plugins {{{','.join(BUILTINS)}}}\n")
        return 2
    module = importlib.import_module(f"{__package__}.{BUILTINS[argv[0]]}")
    try:
        module.run(read_job())
    except PluginError as exc:
        finish(exc.code, exc.description)
    except Exception as exc:  # a plugin bug must still end the job with a reason
        traceback.print_exc(file=sys.stderr)
        finish(1, f"{module.TITLE} Error: {type(exc).__name__}: {exc}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
