#!/usr/bin/env bash
# `make down`: stop what `make up` started - airflow standalone and every process in its process
# group (by the pid recorded in the sandbox dir, never by name), then the sandbox.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
VENV="${MLDR_VENV:-$ROOT/.venv}"
export PATH="$VENV/bin:$PATH"
export MLDR_SANDBOX_DIR="$(realpath -m "${MLDR_SANDBOX_DIR:-$ROOT/.sandbox}")"
PID_FILE="$MLDR_SANDBOX_DIR/airflow.pid"
GRACE="${MLDR_DOWN_GRACE:-45}"

say() { printf '%s\n' "$*" >&2; }

# Any process left in the group (standalone, scheduler, api-server, dag-processor, triggerer and
# their workers). The group id is the pid `up.sh` recorded: it started standalone with setsid.
group_left() { pgrep -g "$1" >/dev/null 2>&1; }

wait_group() {
    local pgid=$1 seconds=$2
    local deadline=$((SECONDS + seconds))
    while group_left "$pgid" && ((SECONDS < deadline)); do
        sleep 0.2
    done
    ! group_left "$pgid"
}

if [[ -f "$PID_FILE" ]]; then
    pid="$(cat "$PID_FILE")"
    # Only our group: the recorded pid must lead its own process group (pid reuse guard).
    if [[ -n "$pid" ]] && [[ "$(ps -o pgid= -p "$pid" 2>/dev/null | tr -d ' ')" == "$pid" ]]; then
        say "stopping airflow standalone (process group $pid)"
        # SIGTERM to the whole group: each component (scheduler, api-server, dag-processor,
        # triggerer, executor workers) shuts down on it. Not SIGINT to standalone alone, its own
        # shutdown path: started in the background by a script, it inherits SIGINT ignored.
        kill -TERM -- "-$pid" 2>/dev/null || true
        if ! wait_group "$pid" "$GRACE"; then
            say "  still running after ${GRACE}s, SIGKILL: $(ps -o pid=,args= -g "$pid" | cut -c1-80 | tr '\n' ';')"
            kill -KILL -- "-$pid" 2>/dev/null || true
            wait_group "$pid" 5 || say "  could not stop process group $pid: $(pgrep -g "$pid" | tr '\n' ' ')"
        fi
    elif [[ -n "$pid" ]] && group_left "$pid"; then
        # standalone itself is gone but its components were left in its group
        say "stopping what is left of airflow standalone's process group $pid"
        kill -TERM -- "-$pid" 2>/dev/null || true
        wait_group "$pid" 10 || kill -KILL -- "-$pid" 2>/dev/null || true
    else
        say "airflow standalone was not running"
    fi
    rm -f "$PID_FILE"
else
    say "airflow standalone was not started by make up (no $PID_FILE)"
fi

mldr sandbox down
