#!/usr/bin/env bash
# stripe-mock: Stripe's own mock of its API (a Go program that answers every endpoint from Stripe's OpenAPI
# spec and validates the parameters sent), used by the gateway's payment tests. No Docker, no download of a
# prebuilt binary: `go install` from the Go module proxy.
#
#   deploy/local/stripe-mock.sh fetch    go install it into $QUNZHU_CACHE_DIR/bin (once per version)
#   deploy/local/stripe-mock.sh path     print the binary's path (exit 1 when not fetched)
#
# The tests start it themselves on a free loopback port (services/gateway/tests/conftest.py: stripe_mock)
# and fail, naming this command, when it is missing. STRIPE_MOCK_BIN overrides the binary.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source-path=SCRIPTDIR source=env.sh
. "$HERE/env.sh"

STRIPE_MOCK_VERSION="v0.203.0"
BIN_DIR="$QUNZHU_CACHE_DIR/bin"
BINARY="$BIN_DIR/stripe-mock"
STAMP="$BIN_DIR/.stripe-mock-version"

fetched() { [ -x "$BINARY" ] && [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$STRIPE_MOCK_VERSION" ]; }

fetch() {
    fetched && return 0
    qz_need_go
    mkdir -p "$BIN_DIR"
    qz_log "stripe-mock: go install github.com/stripe/stripe-mock@$STRIPE_MOCK_VERSION"
    GOBIN="$BIN_DIR" GOFLAGS="${GOFLAGS:--buildvcs=false}" \
        go install "github.com/stripe/stripe-mock@$STRIPE_MOCK_VERSION" \
        || qz_die "go install github.com/stripe/stripe-mock@$STRIPE_MOCK_VERSION failed (output above)"
    echo "$STRIPE_MOCK_VERSION" >"$STAMP"
}

case "${1:-}" in
    fetch) fetch ;;
    path) fetched && echo "$BINARY" ;;
    *) echo "usage: $0 fetch|path" >&2; exit 2 ;;
esac
