#!/usr/bin/env bash
# What `make test` (and test-integration, test-faults) and `.ci/run` need on this machine, in one place.
#
#   bash deploy/local/prereqs.sh    check; install what is missing (apt-get, as root or with passwordless
#                                   sudo), else stop naming the exact command to run
#
# Needs: PostgreSQL server binaries, Prometheus (prometheus + promtool), Java 17+, Maven, Node.js 18+ and npm,
# curl, jq, openssl (the README's quick start is run as a test), make, flock, Python 3.11+ with venv, Chromium
# and a CJK font (the console's browser test), then
# the Kafka jars (deploy/local/kafka.sh fetch, from Maven Central) and stripe-mock. The virtual environment
# itself is `make install`'s job. A missing tool is an error, never a skipped test.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source-path=SCRIPTDIR source=env.sh
. "$HERE/env.sh"

python_ok() {
    command -v python3 >/dev/null 2>&1 \
        && python3 -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' 2>/dev/null
}

# Node.js 18+ (the TypeScript client's tests: tests/client)
node_ok() {
    command -v node >/dev/null 2>&1 \
        && [ "$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)" -ge 18 ]
}

# missing Debian packages, one per absent tool
missing_packages() {
    local missing=()
    compgen -G '/usr/lib/postgresql/*/bin/postgres' >/dev/null || missing+=(postgresql)
    command -v prometheus >/dev/null 2>&1 && command -v promtool >/dev/null 2>&1 || missing+=(prometheus)
    qz_find_java 17 >/dev/null || missing+=(openjdk-17-jdk-headless)
    command -v mvn >/dev/null 2>&1 || missing+=(maven)
    command -v curl >/dev/null 2>&1 || missing+=(curl)
    command -v jq >/dev/null 2>&1 || missing+=(jq)
    command -v openssl >/dev/null 2>&1 || missing+=(openssl)
    command -v make >/dev/null 2>&1 || missing+=(make)
    command -v flock >/dev/null 2>&1 || missing+=(util-linux)
    python_ok || missing+=(python3)
    python3 -c 'import ensurepip, venv' >/dev/null 2>&1 || missing+=(python3-venv)
    node_ok || missing+=(nodejs)
    command -v npm >/dev/null 2>&1 || missing+=(npm)
    # Debian's Chromium: the console's browser test (tests/console) drives it headless with Playwright
    [ -x /usr/bin/chromium ] || missing+=(chromium)
    # a CJK font, so that the console's screenshots show Chinese, not empty boxes
    # (asked as a value, not through `| grep -q`: grep leaving early kills fc-list with SIGPIPE, and under
    # pipefail an installed font then reads as missing)
    [ -n "$(fc-list :lang=zh family 2>/dev/null)" ] || missing+=(fonts-wqy-microhei)
    [ "${#missing[@]}" -eq 0 ] || printf '%s\n' "${missing[@]}"
}

mapfile -t missing < <(missing_packages)
if [ "${#missing[@]}" -gt 0 ]; then
    install_cmd="apt-get install -y --no-install-recommends ${missing[*]}"
    if [ "$(id -u)" -eq 0 ]; then
        qz_log "prereqs: installing ${missing[*]}"
        qz_apt_install "${missing[@]}" || qz_die "$install_cmd failed (output above)"
    elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
        qz_log "prereqs: installing ${missing[*]} (sudo)"
        # shellcheck disable=SC2016  # expanded by the root shell
        sudo -n bash -c '. "$1"; shift; qz_apt_install "$@"' _ "$HERE/env.sh" "${missing[@]}" \
            || qz_die "sudo $install_cmd failed (output above)"
    else
        qz_die "missing: ${missing[*]}. make test needs them; install them with:
    sudo $install_cmd
  (or run the whole CI entry point as root: sudo bash .ci/run)"
    fi
    mapfile -t missing < <(missing_packages)
    [ "${#missing[@]}" -eq 0 ] || qz_die "still missing after apt-get install: ${missing[*]}"
fi
python_ok || qz_die "Python 3.11+ is required, found $(python3 --version 2>&1)"
node_ok || qz_die "Node.js 18+ is required, found $(node --version 2>&1) (Debian 12's nodejs is 18)"

# the Kafka jars: a no-op once fetched (the pom's checksum is kept); the first time, from Maven Central
bash "$HERE/kafka.sh" fetch || qz_die "deploy/local/kafka.sh fetch failed (output above)"

# stripe-mock (the gateway's Stripe tests, issue #16): go install from the Go module proxy, once per version
bash "$HERE/stripe-mock.sh" fetch || qz_die "deploy/local/stripe-mock.sh fetch failed (output above)"

# composecheck (tests/deploy: deploy/compose.yaml loaded as docker compose loads it, no Docker): go build
bash "$HERE/composecheck.sh" fetch || qz_die "deploy/local/composecheck.sh fetch failed (output above)"

qz_log "prereqs: postgresql $(basename "$(dirname "$(dirname "$(compgen -G '/usr/lib/postgresql/*/bin/postgres' | sort -V | tail -n1)")")"), prometheus, java $(qz_java_major "$(qz_find_java 17)"), maven, node $(node --version), python $(python3 -c 'import platform; print(platform.python_version())'), kafka jars: present"
