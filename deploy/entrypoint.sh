#!/usr/bin/env bash
# Identity Hub container entrypoint.
#
#   web            migrate (unless WEB_MIGRATE=0), then gunicorn on 0.0.0.0:8000 (WEB_WORKERS=2,
#                  WEB_THREADS=2; WEB_PORT)
#   worker [ARGS]  celery -A identityhub worker
#   beat [ARGS]    celery -A identityhub beat (run exactly one)
#   all            the NAS profile, the whole hub in one container: migrate, then ONE process
#                  (deploy/hub_all.py): the web in WEB_THREADS=4 threads (waitress; WEB_PORT) and
#                  the Celery worker (solo pool) with the beat scheduler in a thread, supervised
#   hub ARGS       python manage.py hub ARGS   (check, plan, apply, export, schema, sync, claims, keys, ...)
#   manage ARGS    python manage.py ARGS       (migrate, createsuperuser, shell, ...)
#
# Extra ARGS after web/worker/beat are appended to the gunicorn/celery command line (keep the
# worker's and beat's --hostname: the health check pings worker@HOST and beat@HOST).
#
# `all` runs on SQLite and the filesystem broker in the var/ folder unless DATABASE_URL / REDIS_URL
# say otherwise. If its process exits by itself (the web or the worker failed: either ends it), the
# container exits non-zero, so its restart policy starts it again; SIGTERM or SIGINT is passed on as
# SIGTERM (a clean stop: Celery finishes its running task, the web its requests).
#
# Docker secrets: for each name in FILE_VARS below, a variable NAME_FILE pointing at a file (e.g.
# HUB_SECRET_KEY_FILE=/run/secrets/hub_secret_key) sets NAME to that file's content (surrounding
# whitespace trimmed). Setting both is an error. The names are the hub's own secrets and those the
# example config reads (${GOOGLE_CLIENT_SECRET}, ${DSM_CLIENT_SECRET}, ${SYNO_PASSWORD}); any other
# secret of a config file is best read with its `*_file` key (client_secret_file: /run/secrets/x).
# This is done here, in the container only; settings.py itself reads plain environment variables.
set -euo pipefail

APP_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$APP_DIR"
VAR_DIR="${HUB_VAR_DIR:-$APP_DIR/var}"

die() { echo "entrypoint: $*" >&2; exit 1; }

# settings.py's env_flag: 1/true/yes/on, any case, surrounding spaces ignored.
flag() {
  local value="${!1:-0}"
  value="${value,,}"
  value="${value//[[:space:]]/}"
  [[ "$value" == 1 || "$value" == true || "$value" == yes || "$value" == on ]]
}

# gunicorn listens on all interfaces of the container, and HUB_DEBUG=1 lets anyone who reaches the
# hub sign in as any person (the mock upstream): refuse that combination unless told, loudly.
refuse_remote_debug() {
  flag HUB_DEBUG || return 0
  if flag HUB_DEBUG_ALLOW_REMOTE_I_UNDERSTAND_ANYONE_CAN_SIGN_IN; then
    echo "entrypoint: WARNING: HUB_DEBUG=1 on 0.0.0.0:8000 with HUB_DEBUG_ALLOW_REMOTE_I_UNDERSTAND_ANYONE_CAN_SIGN_IN=1:" \
      "ANYONE WHO CAN REACH THIS HUB CAN SIGN IN AS ANY PERSON" >&2
    return 0
  fi
  die "HUB_DEBUG=1 is development mode (anyone who reaches the hub can sign in as any person) and gunicorn" \
    "listens on 0.0.0.0:8000 here: refused. Use HUB_DEBUG=0, or set" \
    "HUB_DEBUG_ALLOW_REMOTE_I_UNDERSTAND_ANYONE_CAN_SIGN_IN=1 to serve it anyway."
}

file_env() {
  local name="$1" file_name="${1}_FILE"
  local file="${!file_name:-}"
  [ -n "$file" ] || return 0
  [ -z "${!name:-}" ] || die "both $name and $file_name are set; set only one"
  [ -r "$file" ] || die "$file_name=$file is not a readable file"
  local value
  value="$(<"$file")"
  value="${value#"${value%%[![:space:]]*}"}"   # trim leading whitespace
  value="${value%"${value##*[![:space:]]}"}"   # trim trailing whitespace (the usual final newline)
  [ -n "$value" ] || die "$file_name=$file is empty"
  export "$name=$value"
  unset "$file_name"
}

# Keep in step with FILE_VARS in deploy/healthcheck.py (tests/deploy/test_entrypoint.py checks).
FILE_VARS=(HUB_SECRET_KEY HUB_ENCRYPTION_KEY DATABASE_URL REDIS_URL CELERY_BROKER_URL HUB_EMAIL_URL
  HUB_METRICS_TOKEN GOOGLE_CLIENT_SECRET DSM_CLIENT_SECRET SYNO_PASSWORD)
for var in "${FILE_VARS[@]}"; do
  file_env "$var"
done

# Static files are collected into the image at build time ($APP_DIR/static). settings.py serves
# STATIC_ROOT = var/static, and var/ is a volume that would keep an old copy across upgrades,
# so var/static is a symlink to the image's copy, refreshed at every start.
link_static() {
  [ -d "$APP_DIR/static" ] || return 0
  mkdir -p "$VAR_DIR"
  if [ "$(readlink "$VAR_DIR/static" 2>/dev/null || true)" != "$APP_DIR/static" ]; then
    rm -rf "$VAR_DIR/static"
    ln -s "$APP_DIR/static" "$VAR_DIR/static"
  fi
}

# web migrates first, unless WEB_MIGRATE=0 (Kubernetes: its migrate Job does it once, instead of
# every web replica at the same time).
migrate_unless_told_not_to() {
  case "${WEB_MIGRATE:-1}" in
    0 | false | no | off) ;;
    *) python manage.py migrate --noinput ;;
  esac
}

usage() {
  echo "usage: entrypoint.sh web | worker [ARGS] | beat [ARGS] | all | hub ARGS | manage ARGS" >&2
  exit 64
}

# --- `all`: two children, supervised -----------------------------------------------------------
declare -A NAMES=()   # pid -> what it is, for the log
STOPPING=""           # why we are stopping: TERM / INT (asked to) or "exit" (a child ended by itself)

alive() { kill -0 "$1" 2>/dev/null; }

stop_children() {
  local pid
  for pid in "${!NAMES[@]}"; do
    kill -TERM "$pid" 2>/dev/null || true
  done
}

on_stop_signal() {
  [ -n "$STOPPING" ] || echo "entrypoint: SIG$1 received: stopping ${NAMES[*]}" >&2
  STOPPING="$1"
  stop_children
}

# After STOP_TIMEOUT seconds, SIGKILL whatever is still running (only when a child ended by itself:
# on `docker stop` Docker's own grace period and SIGKILL apply).
start_watchdog() {
  watchdog "${STOP_TIMEOUT:-60}" "$@" &
  WATCHDOG=$!
}

watchdog() {
  local timeout="$1" sleeper
  shift
  trap 'kill "$sleeper" 2>/dev/null; exit 0' TERM
  sleep "$timeout" &
  sleeper=$!
  wait "$sleeper"
  echo "entrypoint: still running after ${timeout}s: SIGKILL" >&2
  kill -KILL "$@" 2>/dev/null || true
}

# wait_for PID: its exit status, waiting on through trapped signals.
wait_for() {
  local rc
  while :; do
    rc=0
    wait "$1" || rc=$?
    if [ "$rc" -gt 128 ] && alive "$1"; then
      continue  # interrupted by a signal we trapped: the child still runs
    fi
    return "$rc"
  done
}

# supervise: wait until a child exits or we are asked to stop; then stop the rest and exit.
supervise() {
  trap 'on_stop_signal TERM' TERM
  trap 'on_stop_signal INT' INT
  local exited="" rc=0 pid status=0 child_rc
  while [ -z "$STOPPING" ]; do
    rc=0
    unset exited
    wait -n -p exited "${!NAMES[@]}" || rc=$?
    if [ -n "${exited:-}" ]; then
      break
    fi
  done
  if [ -n "${exited:-}" ] && [ -z "$STOPPING" ]; then
    echo "entrypoint: ${NAMES[$exited]} (pid $exited) exited with status $rc: stopping the rest," \
      "the container exits non-zero (its restart policy starts it again)" >&2
    unset "NAMES[$exited]"
    STOPPING="exit"
    local survivors=("${!NAMES[@]}")
    stop_children
    start_watchdog "${survivors[@]}"
    for pid in "${survivors[@]}"; do
      wait_for "$pid" || true
    done
    kill -TERM "$WATCHDOG" 2>/dev/null || true
    wait "$WATCHDOG" 2>/dev/null || true
    exit $((rc == 0 ? 1 : rc))
  fi
  if [ -n "${exited:-}" ]; then
    unset "NAMES[$exited]"  # it ended as we were stopping it
    status=$rc
  fi
  for pid in "${!NAMES[@]}"; do
    child_rc=0
    wait_for "$pid" || child_rc=$?
    [ "$status" -ne 0 ] || status=$child_rc
  done
  echo "entrypoint: stopped (SIG$STOPPING)" >&2
  exit "$status"
}

run_all() {
  # One process (deploy/hub_all.py): Django loaded once; waitress serves the web from its threads,
  # the Celery worker (one pool slot) runs in the main thread with the scheduler in a thread of it —
  # no gossip, mingle or heartbeats to exchange with other workers. glibc would give each thread
  # its own malloc arena; two are plenty here (MALLOC_ARENA_MAX, unless set).
  export MALLOC_ARENA_MAX="${MALLOC_ARENA_MAX:-2}"
  python "$APP_DIR/deploy/hub_all.py" --migrate --bind "0.0.0.0:${WEB_PORT:-8000}" --threads "${WEB_THREADS:-4}" -- \
    -A identityhub worker --beat \
    --schedule "$VAR_DIR/celerybeat-schedule" --pool solo --concurrency 1 --hostname 'worker@%h' \
    --without-gossip --without-mingle --without-heartbeat --loglevel="${HUB_LOG_LEVEL:-INFO}" &
  NAMES[$!]="hub (web + celery worker --beat)"
  supervise
}

mode="${1:-web}"
[ "$#" -eq 0 ] || shift
# deploy/healthcheck.py checks the long-running role recorded here (not hub/manage one-offs,
# which may run inside a web container through `docker compose exec`).
record_mode() { echo "$mode" > /tmp/identityhub-mode 2>/dev/null || true; }

case "$mode" in
  web)
    refuse_remote_debug
    record_mode
    link_static
    migrate_unless_told_not_to
    exec gunicorn identityhub.wsgi -k gthread \
      --workers "${WEB_WORKERS:-2}" --threads "${WEB_THREADS:-2}" \
      --bind "0.0.0.0:${WEB_PORT:-8000}" --keep-alive 5 "$@"
    ;;
  all)
    [ "$#" -eq 0 ] || { echo "entrypoint: all takes no arguments" >&2; usage; }
    refuse_remote_debug
    record_mode
    link_static
    mkdir -p "$VAR_DIR"
    # hub_all.py --migrate runs the migrations itself (a forked child: Django is loaded once); a
    # stop signal meanwhile is passed on and waits for them, then the container exits 143/130.
    run_all
    ;;
  worker)
    record_mode
    exec celery -A identityhub worker --loglevel="${HUB_LOG_LEVEL:-INFO}" --hostname 'worker@%h' "$@"
    ;;
  beat)
    record_mode
    mkdir -p "$VAR_DIR"
    # Remote control lets the health check ping beat (celery 5.7: `beat --enable-remote-control`).
    exec celery -A identityhub beat --loglevel="${HUB_LOG_LEVEL:-INFO}" \
      --schedule "$VAR_DIR/celerybeat-schedule" --enable-remote-control --hostname 'beat@%h' "$@"
    ;;
  hub)
    [ "$#" -gt 0 ] || usage
    exec python manage.py hub "$@"
    ;;
  manage)
    [ "$#" -gt 0 ] || usage
    exec python manage.py "$@"
    ;;
  -h | --help | help)
    usage
    ;;
  *)
    echo "entrypoint: unknown mode '$mode'" >&2
    usage
    ;;
esac
