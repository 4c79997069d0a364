# shellcheck shell=bash
# Bring a throw-away Herald up for contract tests and SDK live tests, and tear it down again.
#
#   source scripts/lib/herald.sh
#   herald_up          # build once, fresh database, migrate, seed, serve on a free port
#   ...                # HERALD_URL and ADMIN_TOKEN are exported
#   herald_down        # also runs from the EXIT trap that herald_up installs
#
# Inputs (all optional):
#   TEST_DATABASE_URL   a database to connect to for CREATE/DROP DATABASE
#                       (default postgres://herald:herald@127.0.0.1:5432/postgres)
#   REDIS_URL           default redis://127.0.0.1:6379
#   HERALD_SKIP_BUILD=1 use the existing $CARGO_TARGET_DIR/debug/herald (default ./target) as it is
#   HERALD_LOG_LEVEL    LOG_LEVEL for the server (default info)
#   HERALD_LOG_KEEP     move the server log there at herald_down (otherwise it is deleted,
#                       or kept in its scratch directory when the shell exits non-zero)
# Outputs: HERALD_URL, ADMIN_TOKEN, HERALD_DATABASE_URL, HERALD_LOG (the server's JSON log file),
#          HERALD_PID, HERALD_TMP (scratch directory removed by herald_down).

HERALD_ROOT="${HERALD_ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}"
HERALD_BIN="${HERALD_BIN:-${CARGO_TARGET_DIR:-$HERALD_ROOT/target}/debug/herald}"

_HERALD_REDIS_PURGE="local c = '0' repeat local r = redis.call('SCAN', c, 'MATCH', ARGV[1], 'COUNT', 1000) c = r[1] for _, k in ipairs(r[2]) do redis.call('DEL', k) end until c == '0' return 0"

_herald_log() { printf 'herald: %s\n' "$*" >&2; }

# Replace the database name (the URL path) of a postgres URL, keeping any query string.
_herald_db_url() {
    python3 - "$1" "$2" <<'PY'
import sys
from urllib.parse import urlsplit, urlunsplit
u = urlsplit(sys.argv[1])
print(urlunsplit((u.scheme, u.netloc, "/" + sys.argv[2], u.query, u.fragment)))
PY
}

_herald_free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

# JSON field of stdin, e.g. `... | _herald_json accessToken`.
_herald_json() {
    python3 -c 'import json, sys; print(json.load(sys.stdin)[sys.argv[1]])' "$1"
}

herald_build() {
    if [[ "${HERALD_SKIP_BUILD:-}" == 1 || "${_HERALD_BUILT:-}" == 1 ]]; then
        return 0
    fi
    _herald_log "building (cargo build --bin herald)"
    (cd "$HERALD_ROOT" && cargo build --quiet --bin herald) || return 1
    _HERALD_BUILT=1
}

# Log in and print the access token.
herald_login() {
    local email="$1" password="$2" body
    body=$(curl -fsS --max-time 10 -X POST "$HERALD_URL/v1/auth/login" \
        -H 'Content-Type: application/json' \
        --data "{\"email\":\"$email\",\"password\":\"$password\"}") || return 1
    printf '%s' "$body" | _herald_json accessToken
}

herald_up() {
    if [[ -n "${HERALD_PID:-}" ]] && kill -0 "$HERALD_PID" 2>/dev/null; then
        _herald_log "already up at $HERALD_URL"
        return 0
    fi
    : "${TEST_DATABASE_URL:=postgres://herald:herald@127.0.0.1:5432/postgres}"
    : "${REDIS_URL:=redis://127.0.0.1:6379}"
    export TEST_DATABASE_URL REDIS_URL

    herald_build || { _herald_log "build failed"; return 1; }
    [[ -x "$HERALD_BIN" ]] || { _herald_log "no binary at $HERALD_BIN"; return 1; }

    trap herald_down EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM

    HERALD_TMP=$(mktemp -d "${TMPDIR:-/tmp}/herald-contract.XXXXXX")
    HERALD_DB_NAME="herald_contract_$$"
    HERALD_LOG="$HERALD_TMP/herald.log"
    export HERALD_TMP HERALD_LOG

    PGOPTIONS="-c client_min_messages=warning" psql "$TEST_DATABASE_URL" -qAt -v ON_ERROR_STOP=1 \
        -c "DROP DATABASE IF EXISTS $HERALD_DB_NAME WITH (FORCE)" \
        -c "CREATE DATABASE $HERALD_DB_NAME" >/dev/null \
        || { _herald_log "cannot create database $HERALD_DB_NAME via $TEST_DATABASE_URL"; return 1; }
    _HERALD_DB_CREATED=1
    HERALD_DATABASE_URL=$(_herald_db_url "$TEST_DATABASE_URL" "$HERALD_DB_NAME")
    export HERALD_DATABASE_URL

    # Run from the scratch directory: the binary needs no repository file, and a developer's
    # .env must not change what the contract run sees.
    (cd "$HERALD_TMP" && DATABASE_URL="$HERALD_DATABASE_URL" "$HERALD_BIN" migrate >>"$HERALD_LOG" 2>&1) \
        || { _herald_log "migrate failed:"; tail -n 20 "$HERALD_LOG" >&2; return 1; }
    (cd "$HERALD_TMP" && DATABASE_URL="$HERALD_DATABASE_URL" "$HERALD_BIN" seed >>"$HERALD_LOG" 2>&1) \
        || { _herald_log "seed failed:"; tail -n 20 "$HERALD_LOG" >&2; return 1; }

    local port
    port=$(_herald_free_port)
    HERALD_URL="http://127.0.0.1:$port"
    export HERALD_URL
    (
        cd "$HERALD_TMP" || exit 1
        exec env \
            DATABASE_URL="$HERALD_DATABASE_URL" \
            REDIS_URL="$REDIS_URL" \
            REDIS_KEY_PREFIX="herald-contract-$$-$port:" \
            RATE_LIMIT_GLOBAL=100000/1m \
            RATE_LIMIT_WRITES=100000/1m \
            LOG_FORMAT=json \
            LOG_LEVEL="${HERALD_LOG_LEVEL:-info}" \
            HOST=127.0.0.1 \
            PORT="$port" \
            "$HERALD_BIN" serve
    ) >>"$HERALD_LOG" 2>&1 &
    HERALD_PID=$!
    HERALD_REDIS_PREFIX="herald-contract-$$-$port:"
    export HERALD_PID

    local deadline=$((SECONDS + 60)) code
    while :; do
        code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$HERALD_URL/health/ready" || true)
        [[ "$code" == 200 ]] && break
        if ! kill -0 "$HERALD_PID" 2>/dev/null; then
            _herald_log "server exited during start-up:"; tail -n 30 "$HERALD_LOG" >&2; return 1
        fi
        if ((SECONDS >= deadline)); then
            _herald_log "not ready after 60s (last status $code):"; tail -n 30 "$HERALD_LOG" >&2; return 1
        fi
        sleep 0.2
    done

    ADMIN_TOKEN=$(herald_login admin@example.com admin123) \
        || { _herald_log "admin login failed"; return 1; }
    export ADMIN_TOKEN
    _herald_log "up at $HERALD_URL (database $HERALD_DB_NAME, log $HERALD_LOG)"
}

herald_down() {
    local status=$?
    if [[ -n "${HERALD_PID:-}" ]]; then
        if kill -0 "$HERALD_PID" 2>/dev/null; then
            kill -TERM "$HERALD_PID" 2>/dev/null
            local i
            for i in $(seq 1 50); do
                kill -0 "$HERALD_PID" 2>/dev/null || break
                sleep 0.1
            done
            kill -0 "$HERALD_PID" 2>/dev/null && kill -KILL "$HERALD_PID" 2>/dev/null
        fi
        wait "$HERALD_PID" 2>/dev/null || true
        unset HERALD_PID
    fi
    if [[ "${_HERALD_DB_CREATED:-}" == 1 ]]; then
        psql "$TEST_DATABASE_URL" -qAt -c "DROP DATABASE IF EXISTS $HERALD_DB_NAME WITH (FORCE)" >/dev/null 2>&1 \
            || _herald_log "could not drop database $HERALD_DB_NAME"
        unset _HERALD_DB_CREATED
    fi
    if [[ -n "${HERALD_REDIS_PREFIX:-}" ]] && command -v redis-cli >/dev/null; then
        # One server-side SCAN + DEL loop: key names may hold any character (rate-limit keys
        # carry the login email as sent).
        redis-cli -u "$REDIS_URL" EVAL "$_HERALD_REDIS_PURGE" 0 "${HERALD_REDIS_PREFIX}*" >/dev/null 2>&1 || true
        unset HERALD_REDIS_PREFIX
    fi
    if [[ -n "${HERALD_TMP:-}" && -d "$HERALD_TMP" ]]; then
        if [[ -n "${HERALD_LOG_KEEP:-}" ]]; then
            # The caller names where the log goes (replaced on every run).
            mkdir -p "$(dirname "$HERALD_LOG_KEEP")" && mv -f "$HERALD_LOG" "$HERALD_LOG_KEEP" \
                && _herald_log "server log: $HERALD_LOG_KEEP"
            rm -rf "$HERALD_TMP"
        elif [[ $status -ne 0 ]]; then
            _herald_log "server log kept at $HERALD_LOG"
        else
            rm -rf "$HERALD_TMP"
        fi
    fi
    return $status
}
