#!/bin/sh
# Entry point of the qunzhu image.
#   serve              python -m qunzhu serve "$SERVICE" on $HOST:$PORT (PORT unset: the service's default port)
#   migrate [NAME|all] alembic upgrade head for one service (default "$SERVICE") or all four, then exit
#   anything else      exec'd as is (e.g. `python -m qunzhu --help`, `sh`)
set -eu
cmd="${1:-serve}"
[ $# -gt 0 ] && shift
case "$cmd" in
    serve)
        : "${SERVICE:?set SERVICE to membership, content, engagement or gateway}"
        exec python -m qunzhu serve "$SERVICE" --host "${HOST:-0.0.0.0}" --port "${PORT:-0}" "$@"
        ;;
    migrate)
        target="${1:-${SERVICE:-}}"
        [ -n "$target" ] || { echo "error: migrate needs a service name or 'all' (or SERVICE set)" >&2; exit 2; }
        exec python -m qunzhu migrate "$target"
        ;;
    *)
        exec "$cmd" "$@"
        ;;
esac
