#!/usr/bin/env bash
# `make up`: the local two-region sandbox plus Airflow (`airflow standalone`) with mldr's DAGs, the
# DR dashboard plugin and the sandbox's AWS connections. Prints the UI URL and the login.
# `make down` (scripts/down.sh) stops all of it.
#
# Settings (environment):
#   MLDR_SANDBOX_DIR       where the sandbox and Airflow keep their state (default ./.sandbox)
#   MLDR_AIRFLOW_PORT      Airflow UI/API port on 127.0.0.1 (default 8080)
#   MLDR_AIRFLOW_USER      login (default admin), MLDR_AIRFLOW_PASSWORD (default admin)
#   MLDR_UP_TIMEOUT        seconds to wait for the API server (default 300)
#   MLDR_UP_SEED_LAG=0     skip the first replication-lag measurement (the dashboard starts empty)
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
VENV="${MLDR_VENV:-$ROOT/.venv}"
# `airflow standalone` starts its components as `airflow ...` subprocesses: they must be on PATH.
export PATH="$VENV/bin:$PATH"
export MLDR_SANDBOX_DIR="$(realpath -m "${MLDR_SANDBOX_DIR:-$ROOT/.sandbox}")"
PORT="${MLDR_AIRFLOW_PORT:-8080}"
LOGIN="${MLDR_AIRFLOW_USER:-admin}"
PASSWORD="${MLDR_AIRFLOW_PASSWORD:-admin}"
TIMEOUT="${MLDR_UP_TIMEOUT:-300}"
PID_FILE="$MLDR_SANDBOX_DIR/airflow.pid"
LOG_DIR="$MLDR_SANDBOX_DIR/logs"
LOG="$LOG_DIR/airflow.log"

say() { printf '%s\n' "$*" >&2; }

alive() { [[ -n "${1:-}" ]] && [[ -r "/proc/$1/cmdline" ]] && tr '\0' ' ' <"/proc/$1/cmdline" | grep -q "airflow standalone"; }

if [[ -f "$PID_FILE" ]] && alive "$(cat "$PID_FILE")"; then
    say "Airflow is already running (pid $(cat "$PID_FILE")): http://localhost:$PORT/ - \`make down\` stops it"
    exit 0
fi
if (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; then
    say "port $PORT on 127.0.0.1 is in use: stop what listens there or pick another with MLDR_AIRFLOW_PORT=..."
    exit 1
fi

export AIRFLOW_HOME="$MLDR_SANDBOX_DIR/airflow"
export AIRFLOW__CORE__DAGS_FOLDER="$ROOT/dags"
export AIRFLOW__CORE__PLUGINS_FOLDER="$ROOT/plugins"
export AIRFLOW__CORE__LOAD_EXAMPLES=False
export AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS="$LOGIN:admin"
export AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE="$AIRFLOW_HOME/simple_auth_manager_passwords.json"
export AIRFLOW__API__HOST=127.0.0.1
export AIRFLOW__API__PORT="$PORT"
# A laptop sandbox: one API worker (each would load every plugin) and a few task slots (the
# LocalExecutor starts one process per slot up front; the default is 32).
export AIRFLOW__API__WORKERS=1
export AIRFLOW__CORE__PARALLELISM=4
# Tasks report to the API server's execution API; it must follow the port, or every task fails
# with "connection refused".
export AIRFLOW__CORE__EXECUTION_API_SERVER_URL="http://localhost:$PORT/execution/"
# Where a person opens the UI: the report links `mldr verify`, `mldr drill`, the task logs and the
# alerts print lead to the DR dashboard under it (/mldr/reports/...).
export AIRFLOW__API__BASE_URL="http://localhost:$PORT"
mkdir -p "$AIRFLOW_HOME" "$LOG_DIR"
# A fixed login for the sandbox (the simple auth manager would generate a random password).
printf '{"%s": "%s"}\n' "$LOGIN" "$PASSWORD" >"$AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE"

# The metadata DB is migrated while the sandbox starts (they do not depend on each other), so
# standalone's own check finds it ready.
say "== airflow db migrate (in the background; log: $LOG_DIR/airflow-db-migrate.log)"
airflow db migrate >"$LOG_DIR/airflow-db-migrate.log" 2>&1 &
migrate=$!
trap 'kill "$migrate" 2>/dev/null || true' EXIT  # if the sandbox fails to start, stop the migration too

say "== sandbox ($MLDR_SANDBOX_DIR)"
mldr sandbox up
set -a
# shellcheck disable=SC1091  # written by `mldr sandbox up`: AIRFLOW_CONN_* and MLDR_TOPOLOGY
. "$MLDR_SANDBOX_DIR/airflow.env"
set +a
# ...and for the `mldr` CLI, which reads the sandbox's airflow.env when MLDR_TOPOLOGY is not set
printf 'export %s=%q\n' AIRFLOW__API__BASE_URL "$AIRFLOW__API__BASE_URL" >>"$MLDR_SANDBOX_DIR/airflow.env"
if [[ "${MLDR_UP_SEED_LAG:-1}" != "0" ]]; then
    say "== first replication-lag measurement (report + metrics for the dashboard)"
    mldr lag >/dev/null || say "   (lag check reported a problem; the dashboard shows it)"
fi

if ! wait "$migrate"; then
    say "airflow db migrate failed; the end of $LOG_DIR/airflow-db-migrate.log:"
    tail -n 30 "$LOG_DIR/airflow-db-migrate.log" >&2
    exit 1
fi
trap - EXIT

say "== airflow standalone (log: $LOG)"
# Its own session and process group (setsid), so `make down` can stop it and every component it
# started - standalone stops its children on Ctrl-C only, not on SIGTERM.
setsid airflow standalone >>"$LOG" 2>&1 </dev/null &
echo $! >"$PID_FILE"

health="http://localhost:$PORT/api/v2/monitor/health"
deadline=$((SECONDS + TIMEOUT))
until curl -fsS -o /dev/null "$health" 2>/dev/null; do
    if ! alive "$(cat "$PID_FILE")"; then
        say "airflow standalone exited during start-up; the end of $LOG:"
        tail -n 40 "$LOG" >&2
        exit 1
    fi
    if ((SECONDS > deadline)); then
        say "the API server did not answer $health within ${TIMEOUT}s; see $LOG (\`make down\` stops it)"
        exit 1
    fi
    sleep 1
done

cat <<EOF

Airflow is up with the sandbox:
  UI:            http://localhost:$PORT/   (DR dashboard: "DR dashboard" in the navigation, or /mldr/)
  login:         $LOGIN / $PASSWORD
  DAGs:          $ROOT/dags (scheduled ones paused at first: unpause dr_replication_lag to plot the lag every 5 min;
                 dr_failover, dr_failback, dr_restore run when triggered; approve in Browse > Required Actions)
  sandbox:       $MLDR_SANDBOX_DIR (mldr sandbox status)
  Airflow log:   $LOG
  stop it all:   make down
EOF
