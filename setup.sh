#!/usr/bin/env bash
# One entry point for a fresh Debian machine: installs what netsentry needs
# (system packages included), then runs the demo or the test suite.
#
#   ./setup.sh demo   replay pcaps/ against signatures/, summary + logs/demo/eve.json
#   ./setup.sh test   the whole test suite (what .ci/run runs)
#   ./setup.sh env    only install (creates .venv/)
set -euo pipefail
cd "$(dirname "$0")"
ROOT=$PWD
VENV=$ROOT/.venv

# Debian packages: build tools + headers for netfilterqueue, the network tools
# the namespace tests drive, rsyslog (+ gnutls, openssl for test certificates) for the
# syslog tests, chromium for the report's browser test (headless; pip browser
# downloads fail here), libpcap for BPF capture filters, systemd (systemd-analyze
# verify for systemd/) and passwd (useradd for the privilege tests), redis-server
# for the redis tests, logrotate for the rotation test, publicsuffix for the domain/tld
# transforms (rules/keywords/psl.py).
APT_PACKAGES=(python3-venv python3-dev build-essential pkg-config libnetfilter-queue-dev libpcap0.8
              iptables iproute2 rsyslog rsyslog-gnutls chromium systemd passwd redis-server logrotate openssl
              publicsuffix)
# libhs for the prefilter's direct binding (detect/hsdirect.py, built by setup.py where
# hs/hs.h exists). Debian builds Hyperscan for amd64 only; elsewhere the prefilter uses
# the hyperscan package, or pyahocorasick.
if command -v dpkg >/dev/null 2>&1 && [ "$(dpkg --print-architecture)" = amd64 ]; then
    APT_PACKAGES+=(libhyperscan-dev)
fi

log() { printf '[setup] %s\n' "$*" >&2; }

install_system_packages() {
    command -v dpkg-query >/dev/null 2>&1 || { log "not a Debian system; install ${APT_PACKAGES[*]} yourself"; return 0; }
    local missing=()
    for p in "${APT_PACKAGES[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    local sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    log "installing system packages: ${missing[*]}"
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

python_bin() {
    for c in python3.13 python3.12 python3.11 python3; do
        if command -v "$c" >/dev/null 2>&1 && "$c" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
            echo "$c"; return 0
        fi
    done
    log "Python >= 3.11 is required"; exit 1
}

install_python_packages() {
    local stamp=$VENV/.netsentry-installed
    local want
    want=$(cat pyproject.toml setup.py | sha256sum | cut -d' ' -f1)
    if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && [ -x "$VENV/bin/netsentry" ]; then
        rebuild_stale_extensions
        return 0
    fi
    if [ ! -x "$VENV/bin/python" ]; then
        log "creating $VENV"
        "$(python_bin)" -m venv "$VENV"
    fi
    log "installing netsentry and its Python dependencies into $VENV"
    "$VENV/bin/python" -m pip install -q --upgrade pip >/dev/null
    "$VENV/bin/python" -m pip install -q -e ".[ips,dev]"
    echo "$want" > "$stamp"
}

# The compiled path (setup.py COMPILED_MODULES): an extension older than its .py is
# skipped at import (netsentry/_compiled.py), so an edited checkout runs correct but
# slower; rebuild those in place. No-op without a build or without a compiler.
rebuild_stale_extensions() {
    local stale
    stale=$("$VENV/bin/python" -c 'from netsentry._compiled import built_modules as b; print(" ".join(m for m, s in b().items() if s))')
    [ -z "$stale" ] && return 0
    log "rebuilding stale compiled modules: $stale"
    "$VENV/bin/python" setup.py -q build_ext --inplace >/dev/null || log "rebuild failed; those modules run pure Python"
}

# True when compiled extension modules are in use (the suite then runs a second time pure).
have_compiled() {
    [ "$("$VENV/bin/python" -c 'from netsentry._compiled import COMPILED; print(int(COMPILED))')" = 1 ]
}

# Bytecode for every module, written once here: an editable install only caches
# bytecode at import, and not at all where PYTHONDONTWRITEBYTECODE is set (common
# in containers and CI), which then recompiles ~150 modules on every start (~0.25 s
# of a replay's start-up). Cheap when up to date (compileall checks mtimes).
compile_bytecode() {
    "$VENV/bin/python" -m compileall -q -j 0 src/netsentry >/dev/null || log "bytecode not written; start-up compiles the sources"
}

setup() {
    install_system_packages
    install_python_packages
    compile_bytecode
}

case "${1:-}" in
    env)
        setup ;;
    demo)
        setup
        shift
        exec "$VENV/bin/netsentry" replay pcaps/ -S signatures/netsentry.rules -l logs/demo "$@" ;;
    test)
        setup
        shift
        # pytest exits 5 when nothing ran; that must fail CI, and it does.
        # The whole suite runs on both paths (issue #12): compiled first (when built),
        # then again with NETSENTRY_PURE=1 on the pure-Python reference. Both always
        # run, one after the other, each with its own report; the status is the
        # first failure's.
        # stdin is /dev/null: nothing in the suite reads it, and a test's child (ip netns exec,
        # rsyslogd, a daemon under test) that ever did must see EOF, never wait on a CI
        # runner's or a terminal's input.
        # Each run is spread over one pytest-xdist worker per core (NETSENTRY_TEST_WORKERS
        # overrides, 0 = serial; extra args such as -n 0 or -x come after and win).
        # --dist loadfile: a test file runs whole and in order on one worker, so a module's
        # shared fixture (a daemon in namespaces) is built once (tests/conftest.py says why
        # not loadgroup, and what else keeps tests apart).
        pytest_cmd=("$VENV/bin/python" -m pytest -n "${NETSENTRY_TEST_WORKERS:-auto}" --dist loadfile)
        if have_compiled; then
            log "test run 1 of 2: compiled path ($("$VENV/bin/netsentry" version | tail -1))"
            status=0
            "${pytest_cmd[@]}" "$@" </dev/null || status=$?
            log "test run 2 of 2: pure-Python path (NETSENTRY_PURE=1)"
            NETSENTRY_PURE=1 "${pytest_cmd[@]}" "$@" </dev/null || { rc=$?; [ "$status" -ne 0 ] || status=$rc; }
            log "test runs done: compiled and pure-Python; exit status $status"
            exit "$status"
        fi
        log "no compiled modules built: one test run, pure Python"
        exec "${pytest_cmd[@]}" "$@" </dev/null ;;
    *)
        echo "usage: $0 demo|test|env [extra args]" >&2; exit 2 ;;
esac
