#!/usr/bin/env python3
"""Container health check (the image's HEALTHCHECK): exit 0 healthy, 1 not.

It checks the role the container was started in (deploy/entrypoint.sh records it in
/tmp/identityhub-mode, or pass it as the first argument):

- web: GET <issuer path>/healthz on the local gunicorn. The path follows the issuer
  (HUB_ISSUER=https://example.com/id → /id/healthz); the issuer is read the way the hub reads it,
  by importing its settings module (no database access). The Host header is one the hub accepts.
  /healthz is a liveness check: it does not check the database, Redis or the signing key
  (/readyz does; use it for a load balancer's readiness probe).
- worker / beat: `celery inspect ping` of this container's node (worker@HOST / beat@HOST,
  the names the entrypoint gives them) through the broker.
- all (the NAS profile): the web check. The entrypoint itself stops the container when web or the
  worker exits; a ping would fail while the solo worker runs a long NAS sync, so none is sent.
- anything else (hub, manage): healthy.
"""

from __future__ import annotations

import http.client
import os
import socket
import sys
from pathlib import Path
from urllib.parse import urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "identityhub.settings")
MODE_FILE = Path("/tmp/identityhub-mode")  # noqa: S108 - written by the entrypoint in the container
# The entrypoint's FILE_VARS, in the same order (tests/deploy/test_entrypoint.py checks).
FILE_VARS = ("HUB_SECRET_KEY", "HUB_ENCRYPTION_KEY", "DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL", "HUB_EMAIL_URL",
             "HUB_METRICS_TOKEN", "GOOGLE_CLIENT_SECRET", "DSM_CLIENT_SECRET", "SYNO_PASSWORD")


def check_web() -> int:
    from django.http.request import validate_host

    from identityhub import settings

    port = int(os.environ.get("HEALTHCHECK_PORT") or os.environ.get("WEB_PORT") or "8000")
    issuer_host = urlsplit(settings.HUB_ISSUER).hostname
    host = next((h for h in ("127.0.0.1", issuer_host) if validate_host(h, settings.ALLOWED_HOSTS)), issuer_host)
    path = f"/{settings.HUB_URL_PREFIX}/healthz" if settings.HUB_URL_PREFIX else "/healthz"

    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        connection.request("GET", path, headers={"Host": host})
        response = connection.getresponse()
        body = response.read(200)
    except OSError as error:
        print(f"healthcheck: {path}: {error}", file=sys.stderr)
        return 1
    finally:
        connection.close()
    if response.status != 200:
        print(f"healthcheck: {path}: HTTP {response.status} {body!r}", file=sys.stderr)
        return 1
    return 0


def check_celery(role: str) -> int:
    from identityhub.celery import app

    node = f"{role}@{socket.gethostname()}"
    replies = app.control.ping(destination=[node], timeout=5)
    if not any(node in reply for reply in replies):
        print(f"healthcheck: {node} did not answer a ping", file=sys.stderr)
        return 1
    return 0


def main() -> int:
    for name in FILE_VARS:  # the same NAME_FILE convention as the entrypoint
        path = os.environ.get(f"{name}_FILE")
        if path and not os.environ.get(name):
            os.environ[name] = Path(path).read_text().strip()
    recorded = MODE_FILE.read_text().strip() if MODE_FILE.exists() else "web"
    mode = sys.argv[1] if len(sys.argv) > 1 else recorded
    if mode in ("web", "all"):
        return check_web()
    if mode in ("worker", "beat"):
        return check_celery(mode)
    return 0


if __name__ == "__main__":
    sys.exit(main())
