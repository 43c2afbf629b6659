"""Backups in the xyOps XYBK format: export, import (all or nothing), transfer tokens."""
