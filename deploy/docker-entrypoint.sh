#!/bin/sh
# Container entrypoint: start the conductor in the foreground as PID 1's child (use `init: true`).
# A pid file left by the previous container is always stale here (process IDs restart at 1 in a
# new container, so the old number may even match a live process), hence it is removed first.
set -eu
home="${SUNDIAL_HOME:-/data}"
mkdir -p "$home/logs"
rm -f "$home/logs/sundial.pid"
exec sundial start --foreground --home "$home" "$@"
