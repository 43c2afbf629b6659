"""Sundial: a self-hosted job scheduler, workflow engine, fleet monitor and secrets vault.

Speaks the xyOps protocols (REST API, plugin wire protocol, secret format, backups,
satellite protocol) so xyOps and Cronicle users can move over with their tools intact.
"""

__version__ = "0.1.0"
PRODUCT = "Sundial"
