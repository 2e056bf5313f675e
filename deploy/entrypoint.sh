#!/usr/bin/env bash
# Identity Hub container entrypoint.
#
#   web            migrate, then gunicorn on 0.0.0.0:8000 (WEB_WORKERS, WEB_THREADS)
#   worker [ARGS]  celery -A identityhub worker
#   beat [ARGS]    celery -A identityhub beat (run exactly one)
#   hub ARGS       python manage.py hub ARGS   (check, plan, apply, export, schema, sync, claims, keys)
#   manage ARGS    python manage.py ARGS       (migrate, createsuperuser, shell, …)
#
# Extra ARGS after web/worker/beat are appended to the gunicorn/celery command line (keep the
# worker's and beat's --hostname: the health check pings worker@HOST and beat@HOST).
#
# Docker secrets: for HUB_SECRET_KEY, HUB_ENCRYPTION_KEY, DATABASE_URL, REDIS_URL and
# CELERY_BROKER_URL, a variable NAME_FILE pointing at a file (e.g. /run/secrets/hub_secret_key)
# sets NAME to that file's content (surrounding whitespace trimmed). Setting both is an error.
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

for var in HUB_SECRET_KEY HUB_ENCRYPTION_KEY DATABASE_URL REDIS_URL CELERY_BROKER_URL; do
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

usage() {
  echo "usage: entrypoint.sh web | worker [ARGS] | beat [ARGS] | hub ARGS | manage ARGS" >&2
  exit 64
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
    python manage.py migrate --noinput
    exec gunicorn identityhub.wsgi -k gthread \
      --workers "${WEB_WORKERS:-2}" --threads "${WEB_THREADS:-2}" \
      --bind 0.0.0.0:8000 --keep-alive 5 "$@"
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
