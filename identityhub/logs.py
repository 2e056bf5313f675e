"""`HUB_LOG_FORMAT=json`: one JSON object per line (python-json-logger).

    {"time": "2025-01-31T22:10:04.512+00:00", "level": "INFO", "logger": "identityhub.audit",
     "message": "audit sign_in  user=mum@example.com client= nas=", "nas": "ds923", ...}

`time` (UTC, ISO 8601), `level`, `logger`, `message`, then the record's extra fields (`extra={...}`),
and `exc_info` with the traceback. What the text format never shows either stays out: an extra
field named like a secret (password, secret, token, code, cookie, authorization …) is replaced by
`[redacted]`, and a Django request passed as `extra={"request": …}` (django.request does, for every
4xx/5xx) becomes its method and path — never its query string, which carries authorization codes.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from pythonjsonlogger.json import JsonFormatter as _JsonFormatter

REDACTED = "[redacted]"
SECRET_NAMES = frozenset({
    "password", "passwd", "secret", "client_secret", "token", "access_token", "refresh_token", "id_token",
    "logout_token", "code", "code_verifier", "authorization", "cookie", "cookies", "session", "sessionid",
    "otp_code", "private_key", "private_pem", "api_key", "key",
})
_FIRST = ("time", "level", "logger", "message")


def _is_secret_name(name: str) -> bool:
    lowered = name.lower()
    return lowered in SECRET_NAMES or lowered.endswith(("_password", "_secret", "_token", "_passwd"))


def _request_summary(value: Any) -> Any:
    """A Django HttpRequest as {"method", "path"} (no query string, no headers, no body)."""
    if hasattr(value, "META") and hasattr(value, "path") and hasattr(value, "method"):
        return {"method": value.method, "path": value.path}
    return value


class JsonFormatter(_JsonFormatter):
    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("rename_fields", {"levelname": "level", "name": "logger"})
        super().__init__("%(levelname)s %(name)s %(message)s", *args, json_ensure_ascii=False, **kwargs)

    def add_fields(self, log_data: dict[str, Any], record: logging.LogRecord, message_dict: dict[str, Any]) -> None:
        log_data["time"] = datetime.fromtimestamp(record.created, tz=UTC).isoformat(timespec="milliseconds")
        super().add_fields(log_data, record, message_dict)

    def process_log_record(self, log_data: dict[str, Any]) -> dict[str, Any]:
        ordered = {key: log_data.pop(key) for key in _FIRST if key in log_data}
        for key, value in log_data.items():
            if _is_secret_name(key):
                ordered[key] = REDACTED
            else:
                ordered[key] = _request_summary(value)
        return ordered
