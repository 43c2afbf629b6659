"""The Sundial satellite: the worker agent that runs jobs and reports metrics to a conductor.

It imports nothing of the conductor but :mod:`sundial.protocol`, so it can be installed and
upgraded on its own (an import-linter contract enforces this).
"""

from __future__ import annotations

from importlib import metadata

try:
    VERSION = metadata.version("sundial-ops")
except metadata.PackageNotFoundError:  # running from a source tree without installation
    VERSION = "0.0.0"

__all__ = ["VERSION"]
