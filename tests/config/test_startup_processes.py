"""Start-up apply across real processes: several web processes start at once, one applies."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from .conftest import CONFIG, DSM_SECRET, GOOGLE_SECRET, SYNO_PASSWORD, WEB_SECRET

ROOT = Path(__file__).resolve().parents[2]
START = "import logging; logging.basicConfig(level=logging.INFO); import identityhub.wsgi"
COUNT = (
    "import django; django.setup(); from identityhub.models import AuditEvent; "
    "print(sorted(e.details['created'] for e in AuditEvent.objects.filter(kind='config_apply')))"
)


def test_concurrent_starts_apply_once(tmp_path):
    config = tmp_path / "hub.yaml"
    config.write_text(CONFIG)
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "identityhub.settings",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'hub.sqlite3'}",  # its own database, whatever the suite uses
        "HUB_VAR_DIR": str(tmp_path / "var"),
        "HUB_CONFIG": str(config),
        "GOOGLE_CLIENT_SECRET": GOOGLE_SECRET, "SYNO_PASSWORD": SYNO_PASSWORD,
        "DSM_CLIENT_SECRET": DSM_SECRET, "WEB_CLIENT_SECRET": WEB_SECRET,
    }
    env.pop("REDIS_URL", None)
    subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env, check=True)
    env["HUB_APPLY_ON_START"] = "1"
    starts = [subprocess.Popen([sys.executable, "-c", START], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True) for _ in range(3)]
    logs = [p.communicate(timeout=60)[0] for p in starts]
    assert [p.returncode for p in starts] == [0, 0, 0], logs
    assert sum("Plan: 10 to create" in log for log in logs) == 1
    assert sum("config: No changes." in log for log in logs) == 2
    counted = subprocess.run([sys.executable, "-c", COUNT], cwd=ROOT, env=env, capture_output=True, text=True)
    assert counted.stdout.strip() == "[0, 0, 10]", counted.stderr
