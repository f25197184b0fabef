#!/usr/bin/env bash
# composecheck: loads deploy/compose.yaml with compose-go, the loader Docker Compose itself uses (schema,
# `${VAR:?message}` interpolation, normalisation), so the compose tests check the file as `docker compose
# config` would, on a machine without Docker. Built from deploy/tools/composecheck (go.mod/go.sum pin it)
# with the Go module proxy.
#
#   deploy/local/composecheck.sh fetch    build it into $QUNZHU_CACHE_DIR/bin (again when its source changes)
#   deploy/local/composecheck.sh path     print the binary's path (exit 1 when not built)
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source-path=SCRIPTDIR source=env.sh
. "$HERE/env.sh"

SOURCE="$HERE/../tools/composecheck"
BIN_DIR="$QUNZHU_CACHE_DIR/bin"
BINARY="$BIN_DIR/composecheck"
STAMP="$BIN_DIR/.composecheck-source"
digest() { cat "$SOURCE/go.mod" "$SOURCE/go.sum" "$SOURCE/main.go" | sha256sum | cut -d' ' -f1; }

built() { [ -x "$BINARY" ] && [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$(digest)" ]; }

fetch() {
    built && return 0
    qz_need_go
    mkdir -p "$BIN_DIR"
    qz_log "composecheck: go build (compose-go, from the Go module proxy)"
    (cd "$SOURCE" && GOFLAGS="${GOFLAGS:--buildvcs=false}" go build -o "$BINARY" .) \
        || qz_die "go build of deploy/tools/composecheck failed (output above)"
    digest >"$STAMP"
}

case "${1:-}" in
    fetch) fetch ;;
    path) built && echo "$BINARY" ;;
    *) echo "usage: $0 fetch|path" >&2; exit 2 ;;
esac
