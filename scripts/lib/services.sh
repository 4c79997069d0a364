# shellcheck shell=bash
#
# Local PostgreSQL and Redis for Herald's scripts (sourced by scripts/dev and scripts/test).
#
#   source scripts/lib/services.sh
#   ensure_postgres   # exports DATABASE_URL and TEST_DATABASE_URL
#   ensure_redis      # exports REDIS_URL and TEST_REDIS_URL
#
# Each function uses a server that already answers on 127.0.0.1, and otherwise installs the
# Debian packages (when missing) and starts one. Nothing is ever stopped or reconfigured.
#
# Inputs (all optional):
#   PGPORT       PostgreSQL port on 127.0.0.1 (default 5432)
#   REDIS_PORT   Redis port on 127.0.0.1 (default 6379)
#   DATABASE_URL, TEST_DATABASE_URL, REDIS_URL, TEST_REDIS_URL: left alone when already set.
#
# Meant to be sourced by scripts that run with `set -euo pipefail`; the functions also check
# their own steps, so they report a clear error when called from a conditional as well.

set -euo pipefail

# The development role and database ensure_postgres creates (the URLs below use them).
HERALD_PG_ROLE=herald
HERALD_PG_PASSWORD=herald
HERALD_PG_DATABASE=herald

# ---------------------------------------------------------------------------------------------
# Small helpers
# ---------------------------------------------------------------------------------------------

# log MESSAGE...: progress line on stderr, so stdout stays clean for callers.
log() {
  printf '==> %s\n' "$*" >&2
}

# die MESSAGE...: report and fail (returns rather than exits, so a sourcing shell survives).
die() {
  printf '==> ERROR: %s\n' "$*" >&2
  return 1
}

# have CMD: true when CMD is on the PATH.
have() {
  command -v "$1" >/dev/null 2>&1
}

# as_root CMD...: run CMD as root (directly when we are root, otherwise through sudo).
as_root() {
  if [[ $EUID -eq 0 ]]; then
    "$@"
  elif have sudo; then
    sudo "$@"
  else
    die "need root to run '$*' (not root and no sudo)"
  fi
}

# apt_install PACKAGE...: install Debian packages, refreshing the package lists once per run.
_HERALD_APT_UPDATED=
apt_install() {
  have apt-get || die "cannot install $* : apt-get not found (this script expects Debian)" || return
  if [[ -z $_HERALD_APT_UPDATED ]]; then
    log "apt-get update"
    as_root apt-get update -q || die "apt-get update failed" || return
    _HERALD_APT_UPDATED=1
  fi
  log "Installing $* from Debian packages"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$@" \
    || die "apt-get install $* failed"
}

# wait_for SECONDS DESCRIPTION CMD...: retry CMD every half second until it succeeds.
wait_for() {
  local seconds=$1 what=$2
  shift 2
  local tries=$((seconds * 2))
  while ((tries-- > 0)); do
    "$@" && return 0
    sleep 0.5
  done
  die "$what did not come up within ${seconds}s"
}

# ---------------------------------------------------------------------------------------------
# PostgreSQL
# ---------------------------------------------------------------------------------------------

# True when a PostgreSQL server accepts connections on 127.0.0.1:$PGPORT.
_pg_ready() {
  pg_isready -q -h 127.0.0.1 -p "$PGPORT" -t 2
}

# True when the PostgreSQL server binaries (not just the client) are installed.
_pg_server_installed() {
  compgen -G '/usr/lib/postgresql/*/bin/postgres' >/dev/null
}

# Starts the local cluster configured for $PGPORT (Debian's postgresql-common layout).
_pg_start() {
  if ! have pg_lsclusters || ! have pg_ctlcluster; then
    log "Starting PostgreSQL with 'service postgresql start'"
    as_root service postgresql start || die "could not start PostgreSQL"
    return
  fi

  # Columns of pg_lsclusters: version, cluster name, port, status, owner, data dir, log file.
  local version name
  read -r version name < <(pg_lsclusters --no-header | awk -v port="$PGPORT" '$3 == port { print $1, $2; exit }') || true

  if [[ -z ${version:-} ]]; then
    if [[ -n $(pg_lsclusters --no-header) ]]; then
      log "Existing clusters:"
      pg_lsclusters >&2
      die "no PostgreSQL cluster is configured for port $PGPORT (set PGPORT to one of the ports above)"
      return
    fi
    # Installed without a cluster (e.g. create_main_cluster = false): make the stock one.
    version=$(basename "$(compgen -G '/usr/lib/postgresql/*' | sort -V | tail -n 1)")
    name=main
    log "Creating PostgreSQL cluster $version/$name on port $PGPORT"
    as_root pg_createcluster "$version" "$name" --port "$PGPORT" || die "pg_createcluster failed" || return
  fi

  log "Starting PostgreSQL cluster $version/$name (port $PGPORT)"
  if ! as_root pg_ctlcluster --skip-systemctl-redirect "$version" "$name" start; then
    log "pg_ctlcluster failed; trying 'service postgresql start'"
    as_root service postgresql start || die "could not start PostgreSQL cluster $version/$name"
  fi
}

# _pg_superuser_psql < SQL: runs SQL from stdin as a PostgreSQL superuser on $PGPORT.
# Uses the `postgres` role over TCP when it needs no password (trust auth, or a PGPASSWORD the
# caller gave); otherwise, as on a stock Debian install (peer auth on the unix socket, password
# auth over TCP), runs psql as the `postgres` OS account through the unix socket.
_pg_superuser_psql() {
  if PGCONNECT_TIMEOUT=5 psql -X -w -q -h 127.0.0.1 -p "$PGPORT" -U postgres -d postgres \
    -Atc 'select 1' >/dev/null 2>&1; then
    psql -X -w -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$PGPORT" -U postgres -d postgres
  elif [[ $EUID -eq 0 ]]; then
    # `cd /`: the postgres account may not be allowed into the caller's working directory.
    (cd / && runuser -u postgres -- psql -X -q -v ON_ERROR_STOP=1 -p "$PGPORT" -d postgres)
  elif have sudo; then
    (cd / && sudo -u postgres psql -X -q -v ON_ERROR_STOP=1 -p "$PGPORT" -d postgres)
  else
    die "cannot reach a PostgreSQL superuser: 'postgres' over TCP needs a password (set PGPASSWORD) and there is no sudo to become the postgres OS user"
  fi
}

# Creates (or repairs) the herald role and database. Idempotent.
_pg_create_role_and_database() {
  log "Ensuring role '$HERALD_PG_ROLE' (LOGIN CREATEDB) and database '$HERALD_PG_DATABASE'"
  # The role gets its password reset every time, so the URLs below always work. CREATE DATABASE
  # cannot run inside a DO block, hence the \gexec (psql runs the generated statement).
  _pg_superuser_psql <<SQL
DO \$\$
BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '$HERALD_PG_ROLE') THEN
    CREATE ROLE $HERALD_PG_ROLE LOGIN CREATEDB PASSWORD '$HERALD_PG_PASSWORD';
  ELSE
    ALTER ROLE $HERALD_PG_ROLE LOGIN CREATEDB PASSWORD '$HERALD_PG_PASSWORD';
  END IF;
END
\$\$;
SELECT 'CREATE DATABASE $HERALD_PG_DATABASE OWNER $HERALD_PG_ROLE'
WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = '$HERALD_PG_DATABASE')
\gexec
SQL
}

# ensure_postgres: a PostgreSQL on 127.0.0.1:$PGPORT with the herald role and database.
ensure_postgres() {
  PGPORT=${PGPORT:-5432}
  local url="postgres://$HERALD_PG_ROLE:$HERALD_PG_PASSWORD@127.0.0.1:$PGPORT"

  # The client tools are needed in every case (pg_isready, psql).
  if ! have pg_isready || ! have psql; then
    apt_install postgresql-client || return
  fi

  if _pg_ready; then
    log "PostgreSQL is up on 127.0.0.1:$PGPORT"
  else
    if ! _pg_server_installed; then
      apt_install postgresql postgresql-client || return
    fi
    # The package may have started its cluster itself; start ours only if nothing answers yet.
    if ! _pg_ready; then
      _pg_start || return
    fi
    wait_for 30 "PostgreSQL on 127.0.0.1:$PGPORT" _pg_ready || return
    log "PostgreSQL is up on 127.0.0.1:$PGPORT"
  fi

  _pg_create_role_and_database || die "could not create the $HERALD_PG_ROLE role and database" || return

  # Check the way the service connects: password auth over TCP as the herald role.
  if ! PGCONNECT_TIMEOUT=5 psql -X -w -q "$url/$HERALD_PG_DATABASE" -Atc 'select 1' >/dev/null; then
    die "cannot connect as $url/$HERALD_PG_DATABASE (check pg_hba.conf allows password auth from 127.0.0.1)"
    return
  fi

  export DATABASE_URL="${DATABASE_URL:-$url/$HERALD_PG_DATABASE}"
  # Tests create and drop their own databases through the herald role (it has CREATEDB).
  export TEST_DATABASE_URL="${TEST_DATABASE_URL:-$url/postgres}"
}

# ---------------------------------------------------------------------------------------------
# Redis
# ---------------------------------------------------------------------------------------------

# True when a Redis on 127.0.0.1:$REDIS_PORT answers PING with PONG.
_redis_ready() {
  if have redis-cli; then
    [[ $(redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping 2>/dev/null) == PONG ]]
  else
    # No client installed (yet): speak the protocol over bash's /dev/tcp.
    local reply
    (
      exec 3<>"/dev/tcp/127.0.0.1/$REDIS_PORT" || exit 1
      printf 'PING\r\n' >&3
      IFS= read -r -t 2 reply <&3 && [[ $reply == '+PONG'* ]]
    ) 2>/dev/null
  fi
}

# ensure_redis: a Redis on 127.0.0.1:$REDIS_PORT.
ensure_redis() {
  REDIS_PORT=${REDIS_PORT:-6379}

  if _redis_ready; then
    log "Redis is up on 127.0.0.1:$REDIS_PORT"
  else
    if ! have redis-server; then
      apt_install redis-server || return
    fi
    # The package may have started the system service; start ours only if nothing answers yet.
    if ! _redis_ready; then
      # A private, throwaway server: no RDB snapshots, no AOF. Its pid and log go to $TMPDIR;
      # stop it with `redis-cli -p $REDIS_PORT shutdown nosave`.
      local state="${TMPDIR:-/tmp}/herald-redis-$REDIS_PORT"
      log "Starting redis-server on 127.0.0.1:$REDIS_PORT (no persistence; log: $state.log)"
      redis-server --daemonize yes --bind 127.0.0.1 --port "$REDIS_PORT" --save "" --appendonly no \
        --pidfile "$state.pid" --logfile "$state.log" \
        || die "redis-server failed to start (see $state.log)" || return
    fi
    wait_for 10 "Redis on 127.0.0.1:$REDIS_PORT" _redis_ready || return
    log "Redis is up on 127.0.0.1:$REDIS_PORT"
  fi

  export REDIS_URL="${REDIS_URL:-redis://127.0.0.1:$REDIS_PORT}"
  export TEST_REDIS_URL="${TEST_REDIS_URL:-redis://127.0.0.1:$REDIS_PORT}"
}
