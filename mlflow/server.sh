#!/usr/bin/env bash
# Start the MLflow tracking server (UI + API) with the project's defaults, in the foreground.
#
#   mlflow/server.sh [PORT] [MLFLOW SERVER OPTIONS...]   # default: a free port on 127.0.0.1
#
# Same defaults as `racecar-study ui`: SQLite store mlflow/store/mlflow.db, artifacts served from
# mlflow/store/artifacts. Override with environment variables:
#   BACKEND_STORE_URI      e.g. postgresql://mlflow@db:5432/mlflow (password: PGPASSWORD or ~/.pgpass)
#   ARTIFACTS_DESTINATION  e.g. s3://bucket/mlflow (keys: AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY)
#   HOST                   127.0.0.1 (use 0.0.0.0 plus --allowed-hosts for a shared server)
#   WORKERS                1
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(dirname "$here")"
store="$here/store"
py="$repo/.venv/bin/python"
[ -x "$py" ] || py="$(command -v python3)"

mkdir -p "$store/artifacts"
backend="${BACKEND_STORE_URI:-sqlite:///$store/mlflow.db}"
artifacts="${ARTIFACTS_DESTINATION:-$store/artifacts}"
host="${HOST:-127.0.0.1}"
port="${1:-${PORT:-}}"
[ $# -gt 0 ] && shift
if [ -z "$port" ]; then
  port="$("$py" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
fi

# The job runners serve MLflow's GenAI features only (seven extra processes); set it to true to keep them.
export MLFLOW_SERVER_ENABLE_JOB_EXECUTION="${MLFLOW_SERVER_ENABLE_JOB_EXECUTION:-false}"

shown="$(printf '%s' "$backend" | sed -E 's#(://[^:/@]+):[^@/]+@#\1:***@#')"  # never print a password
echo "MLflow UI: http://$host:$port  (store $shown, artifacts $artifacts; Ctrl-C to stop)"
exec "$py" -m mlflow server --host "$host" --port "$port" \
  --backend-store-uri "$backend" --artifacts-destination "$artifacts" --workers "${WORKERS:-1}" "$@"
