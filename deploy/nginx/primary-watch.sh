#!/bin/sh
# Keeps nginx pointed at the Sundial primary. Every 2 s it asks each conductor's /health; the
# one answering {"master":true} becomes the only upstream server, and nginx is reloaded when
# that changes. Run it beside nginx (systemd unit, container sidecar).
#   usage: primary-watch.sh HOST:PORT [HOST:PORT ...]
#   env:   SUNDIAL_PRIMARY_FILE (default /etc/nginx/sundial-primary.conf), INTERVAL (default 2)
set -u
[ "$#" -gt 0 ] || { echo "usage: $0 HOST:PORT [HOST:PORT ...]" >&2; exit 2; }
target=${SUNDIAL_PRIMARY_FILE:-/etc/nginx/sundial-primary.conf}
interval=${INTERVAL:-2}
current=$(sed -n 's/^server \(.*\);$/\1/p' "$target" 2>/dev/null || true)
while :; do
  for node in "$@"; do
    if curl -fsS -m 2 "http://$node/health" 2>/dev/null | grep -q '"master":true'; then
      if [ "$node" != "$current" ]; then
        printf 'server %s;\n' "$node" > "$target.tmp" && mv "$target.tmp" "$target" \
          && nginx -s reload && current=$node && echo "primary is now $node"
      fi
      break
    fi
  done
  sleep "$interval"
done
