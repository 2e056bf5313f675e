"""A small, typed client for the parts of the Synology DSM Web API the user sync needs.

Facts it honours (../shared/reference/dsm-webapi.md): discovery through SYNO.API.Info first (paths
and versions as the NAS reports them: DSM 6.2 has Auth on auth.cgi up to v6, DSM 7 on entry.cgi);
login with a named session and ``enable_syno_token=yes``, the token sent as ``X-SYNO-TOKEN``; form
POSTs so the password never lands in a URL; the ``success`` flag checked on every answer; paged
``SYNO.Core.User list``; one re-login on 106/119; logout always, also after errors.

Account creation (synology.provisioning): ``SYNO.Core.User get`` / ``create``,
``SYNO.Core.User.PasswordPolicy get`` and the asynchronous ``SYNO.Core.User.Group join`` /
``join_status``. The two extra APIs are optional in discovery: a NAS without them syncs as before and
gets a clear error only when they are needed. The new account's password is sent as is in the POST
body: NAS URLs are https (http on loopback only, the tests' fake), and DSM's RSA encryption of the
field is only for plain http. The codes DSM uses for "no such user", "name taken", "bad name" and
"weak password" are not documented: the ones below (31xx) are inferences, the fake answers them.

Usage::

    with DSMClient(base_url, username, password, verify=nas.tls_verify) as dsm:
        users = dsm.list_users()

Every failure is a :class:`DSMError` subclass with a message fit for an operator; messages never
contain the password.

Bounds: requests' timeouts apply per socket read, so a NAS that drips a byte now and then never trips
them. Every call therefore also has a total deadline (``call_deadline``, and optionally ``deadline``
for the whole conversation from the client's creation: the sign-in's quick sync, the console's test
connection); a watchdog shuts the socket down when it passes, whatever phase the call is in (TLS
handshake, headers, body). Answers are read in chunks up to ``max_response_bytes`` (after gzip).
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import logging
import os
import re
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

log = logging.getLogger(__name__)

AUTH_API = "SYNO.API.Auth"
USER_API = "SYNO.Core.User"
INFO_API = "SYNO.DSM.Info"  # optional: the DSM version (getinfo -> version_string)
PASSWORD_POLICY_API = "SYNO.Core.User.PasswordPolicy"  # optional: account creation only
GROUP_API = "SYNO.Core.User.Group"  # optional: account creation only
OPTIONAL_APIS = (INFO_API, PASSWORD_POLICY_API, GROUP_API)
ACCOUNT_ADDITIONAL = ["email", "description", "expired"]
DEFAULT_TIMEOUT: tuple[float, float] = (5.0, 30.0)  # (connect, read) seconds, on every call
DEFAULT_CALL_DEADLINE = 60.0  # seconds for one whole call: connect, TLS, headers and body
LOGOUT_DEADLINE = 5.0  # logout runs after errors too: never wait long for it
# The largest answer read (decoded). A 10,000-account page with email and description is ~1.9 MB
# (tests/hardening/test_dsm_deadline.py measures it); the default page is 1,000 accounts.
MAX_RESPONSE_BYTES = 32 * 1024 * 1024
_CHUNK = 64 * 1024
DEFAULT_PAGE_SIZE = 1000
DEFAULT_SESSION = "IdentityHub"
JOIN_POLL_FIRST = 0.1  # seconds before the first join_status poll; doubles up to JOIN_POLL_MAX
JOIN_POLL_MAX = 1.0

# DSM's user-management error codes are not publicly documented. These are inferences (the 31xx range
# DSM's account pages use); tests/fakes/dsm.py answers the same ones. Any other code keeps its number
# in the message, so an admin can still look it up.
USER_NOT_FOUND = 3100  # get / set / join: no account with that name
NAME_TAKEN = 3101  # create: an account with that name exists (DSM compares names case-insensitively)
BAD_NAME = 3102  # create: characters DSM refuses, too long, or a reserved name
WEAK_PASSWORD = 3103  # create / set: the password breaks the NAS's password policy
ACCOUNT_ERRORS = {
    USER_NOT_FOUND: "no such account",
    NAME_TAKEN: "the account name is taken",
    BAD_NAME: "the account name is not allowed",
    WEAK_PASSWORD: "the password does not satisfy the password policy",
}

Timeout = float | tuple[float, float]
Progress = Callable[[str], None]


# --- errors -----------------------------------------------------------------------------------
class DSMError(Exception):
    """Base class; ``str(error)`` is a readable, secret-free sentence."""

    outcome = "error"

    def __init__(self, message: str, *, code: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.code = code

    def __str__(self) -> str:
        return self.message


class DSMUnreachable(DSMError):
    """The NAS did not answer: connection refused, timeout, DNS, TLS (often: it is asleep)."""

    outcome = "unreachable"


class DSMBadResponse(DSMError):
    """The NAS answered something that is not the documented API (non-200, non-JSON, missing keys)."""


class DSMAuthError(DSMError):
    """The service account cannot sign in or lacks a permission. Retrying does not help."""

    outcome = "auth_failed"


class DSMApiError(DSMError):
    """DSM answered ``success: false`` with a code not covered by a more specific class."""


class DSMSessionExpired(DSMApiError):
    """106 / 119: the session is gone; the client logs in again once."""


COMMON_ERRORS = {
    100: "unknown error",
    101: "missing API, method or version",
    102: "the API does not exist",
    103: "the method does not exist",
    104: "this API version is not supported",
    105: "no permission",
    106: "session timeout",
    107: "duplicate login",
    114: "missing parameters",
    117: "internal error",
    119: "invalid session",
    120: "invalid parameter",
    150: "source IP changed",
    160: "insufficient application privilege",
}


def _auth_error(code: int, username: str) -> DSMError:
    account = f"service account {username!r}"
    messages = {
        400: f"wrong account or password for the {account}",
        401: f"the {account} is disabled on the NAS",
        402: f"permission denied for the {account}",
        403: f"the {account} requires a 2-step verification code; use a service account without 2FA",
        404: f"the {account} requires a 2-step verification code; use a service account without 2FA",
        406: f"the {account} must set up 2-step verification; use a service account without 2FA",
        407: "the NAS blocked this hub's IP address (too many failed logins); unblock it in DSM "
        "(Control Panel > Security > Protection) and check the service account's password",
        408: f"the password of the {account} has expired",
        409: f"the password of the {account} has expired",
        410: f"the password of the {account} must be changed",
        411: f"the {account} is locked on the NAS",
        105: f"the {account} is not an administrator (listing users needs the administrators group)",
    }
    if code in messages:
        return DSMAuthError(f"{messages[code]} (DSM error {code})", code=code)
    return _api_error(code, "login")


def _api_error(code: int, what: str) -> DSMError:
    text = COMMON_ERRORS.get(code) or (ACCOUNT_ERRORS.get(code) if what.startswith(USER_API) else None) or "error"
    cls = DSMSessionExpired if code in (106, 119) else DSMApiError
    return cls(f"DSM answered error {code} ({text}) to {what}", code=code)


# --- data -------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class DSMUser:
    """One local account exactly as ``SYNO.Core.User list`` reports it."""

    name: str
    email: str = ""
    description: str = ""
    expired: bool = False
    uid: int | None = None


@dataclass(frozen=True, slots=True)
class PasswordPolicy:
    """``SYNO.Core.User.PasswordPolicy get`` -> ``data.strong_password``; a missing key is a rule that is off."""

    min_length: int = 0
    min_length_enable: bool = False
    mixed_case: bool = False
    included_numeric_char: bool = False
    included_special_char: bool = False
    exclude_username: bool = False
    history_num: int = 0

    @property
    def required_length(self) -> int:
        """The shortest password the policy accepts (0: no rule)."""
        return self.min_length if self.min_length_enable else 0


def parse_password_policy(raw: Any) -> PasswordPolicy:
    """Read ``data.strong_password`` tolerantly: unknown keys are ignored, odd values count as off / 0."""
    if not isinstance(raw, dict):
        return PasswordPolicy()

    def flag(key: str) -> bool:
        value = raw.get(key)
        if isinstance(value, str):
            return value.strip().lower() in ("true", "yes", "1")
        return value is True or (isinstance(value, int) and value > 0)

    def number(key: str) -> int:
        value = raw.get(key)
        if isinstance(value, bool):
            return 0
        if isinstance(value, str) and value.strip().isdigit():
            value = int(value)
        return value if isinstance(value, int) and value > 0 else 0

    return PasswordPolicy(
        min_length=number("min_length"),
        min_length_enable=flag("min_length_enable"),
        mixed_case=flag("mixed_case"),
        included_numeric_char=flag("included_numeric_char"),
        included_special_char=flag("included_special_char"),
        exclude_username=flag("exclude_username"),
        history_num=number("history_num"),
    )


@dataclass(frozen=True, slots=True)
class ApiInfo:
    path: str
    min_version: int
    max_version: int


def parse_user(raw: Any) -> DSMUser:
    """Validate one entry of ``data.users``; raise DSMBadResponse when it is not the documented shape."""
    if not isinstance(raw, dict):
        raise DSMBadResponse("malformed user list: an entry is not an object")
    name = raw.get("name")
    if not isinstance(name, str) or not name.strip():
        raise DSMBadResponse("malformed user list: an entry has no name")
    email = raw.get("email") or ""
    description = raw.get("description") or ""
    expired = raw.get("expired", "normal")
    if not isinstance(email, str) or not isinstance(description, str):
        raise DSMBadResponse(f"malformed user list: bad email or description for {name!r}")
    if isinstance(expired, bool):
        is_expired = expired
    elif isinstance(expired, str):
        is_expired = expired.strip().lower() not in ("normal", "", "false")
    else:
        raise DSMBadResponse(f"malformed user list: bad 'expired' for {name!r}")
    uid = raw.get("uid")
    if isinstance(uid, bool) or not isinstance(uid, int | None):
        uid = int(uid) if isinstance(uid, str) and uid.isdigit() else None
    return DSMUser(name=name, email=email.strip(), description=description, expired=is_expired, uid=uid)


# --- total deadline: a watchdog over the call's sockets -------------------------------------------
class _Watchdog:
    """Shuts down the sockets of one call when its deadline passes.

    A blocked ``recv`` (in the TLS handshake, the headers or the body) then returns at once, which a
    per-read timeout cannot do against a NAS that sends a byte before each read times out. Each
    socket is watched through a duplicate file descriptor of its own: ``shutdown`` acts on the
    connection (every descriptor of it), and the duplicate cannot be reused by anything else while
    the call runs, even if the connection's own descriptor is closed meanwhile.
    """

    _current = threading.local()

    def __init__(self, seconds: float) -> None:
        self._lock = threading.Lock()
        self._twins: list[socket.socket] = []
        self.fired = False
        self._timer = threading.Timer(max(seconds, 0.0), self._fire)
        self._timer.daemon = True

    def __enter__(self) -> _Watchdog:
        _Watchdog._current.watch = self
        self._timer.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._timer.cancel()
        _Watchdog._current.watch = None
        with self._lock:
            twins, self._twins = self._twins, []
        for twin in twins:
            twin.close()

    @classmethod
    def watch(cls, sock: socket.socket | None) -> None:
        """Put `sock` under the current call's watchdog (no-op outside a call)."""
        watchdog = getattr(cls._current, "watch", None)
        if watchdog is None or sock is None:
            return
        try:
            twin = socket.socket(fileno=os.dup(sock.fileno()))
        except OSError:
            return
        with watchdog._lock:
            watchdog._twins.append(twin)
            fired = watchdog.fired
        if fired:
            _shutdown(twin)

    def _fire(self) -> None:
        with self._lock:
            self.fired = True
            twins = list(self._twins)
        for twin in twins:
            _shutdown(twin)


def _shutdown(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)


class _WatchedConnection(HTTPConnection):
    def _new_conn(self) -> socket.socket:
        sock = super()._new_conn()
        _Watchdog.watch(sock)  # before TLS: the handshake is watched too
        return sock

    def getresponse(self, *args: Any, **kwargs: Any) -> Any:
        _Watchdog.watch(self.sock)  # a kept-alive connection reused by this call
        return super().getresponse(*args, **kwargs)


class _WatchedHTTPSConnection(_WatchedConnection, HTTPSConnection):
    pass


class _WatchedPool(HTTPConnectionPool):
    ConnectionCls = _WatchedConnection


class _WatchedHTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _WatchedHTTPSConnection


class _WatchedAdapter(HTTPAdapter):
    """requests' adapter with connections the call's watchdog can shut down."""

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {"http": _WatchedPool, "https": _WatchedHTTPSPool}


def _mib(size: int) -> str:
    return f"{size / (1024 * 1024):g} MiB"


# --- client -----------------------------------------------------------------------------------
class DSMClient:
    """One signed-in conversation with a NAS. Use as a context manager: it always logs out."""

    def __init__(
        self,
        base_url: str,
        username: str,
        password: str,
        *,
        verify: bool | str = True,
        timeout: Timeout = DEFAULT_TIMEOUT,
        deadline: float | None = None,
        call_deadline: float = DEFAULT_CALL_DEADLINE,
        max_response_bytes: int = MAX_RESPONSE_BYTES,
        page_size: int = DEFAULT_PAGE_SIZE,
        session_name: str = DEFAULT_SESSION,
        progress: Progress | None = None,
    ) -> None:
        """`timeout`: requests' (connect, read) per socket operation. `call_deadline`: seconds for one
        whole call. `deadline`: seconds for everything this client does, from now (logout included
        while time is left). `max_response_bytes`: the largest answer read."""
        self.base_url = base_url.rstrip("/")
        self.username = username
        self._password = password
        self.timeout = timeout
        self.deadline = deadline
        self._ends = time.monotonic() + deadline if deadline is not None else None
        self.call_deadline = call_deadline
        self.max_response_bytes = max_response_bytes
        self.last_response_bytes = 0  # size of the last answer read (measurements, tests)
        self._stalled = False  # a call ran out of time: the NAS is not answering, skip the logout
        self.page_size = page_size
        self.session_name = session_name
        self.progress = progress or (lambda message: None)
        self.http = requests.Session()
        self.http.mount("https://", _WatchedAdapter())
        self.http.mount("http://", _WatchedAdapter())
        # Passed on every request: a Session's own `verify` loses to REQUESTS_CA_BUNDLE in the environment.
        self.verify = verify
        self.http.headers["User-Agent"] = "IdentityHub-sync/1"
        self.apis: dict[str, ApiInfo] = {}
        self._sid: str | None = None
        self._token: str | None = None
        self._relogged = False

    def __repr__(self) -> str:  # never the password
        return f"DSMClient({self.base_url!r}, {self.username!r})"

    # context manager
    def __enter__(self) -> DSMClient:
        try:
            self.discover()
            self.login()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        """Log out when signed in (errors swallowed and logged), then close the HTTP session."""
        try:
            if self._sid:
                self.logout()
        finally:
            self.http.close()

    # low level
    def _seconds_left(self, limit: float) -> tuple[float, float]:
        """(seconds this call may take, the limit to name when they run out): the call's own limit,
        or what is left of the conversation's deadline when that is sooner."""
        if self._ends is not None and self.deadline is not None:
            left = self._ends - time.monotonic()
            if left < limit:
                return left, self.deadline
        return limit, limit

    def _request(
        self, path: str, params: dict[str, Any], *, what: str, method: str = "POST", limit: float | None = None
    ) -> dict[str, Any]:
        """Send one call, return the decoded JSON object (success flag not yet checked)."""
        url = f"{self.base_url}/webapi/{path}"
        headers = {"X-SYNO-TOKEN": self._token} if self._token else {}
        seconds, named = self._seconds_left(self.call_deadline if limit is None else limit)
        late = DSMUnreachable(f"{self.base_url} did not answer within {named:g} s ({what})")
        if seconds <= 0:
            raise late
        with _Watchdog(seconds) as watchdog:
            try:
                # No redirects: requests re-sends a POST body (the password) to wherever a 307/308 points,
                # another host or plain http included.
                response = self.http.request(
                    method, url, params=params if method == "GET" else None,
                    data=params if method != "GET" else None, headers=headers,
                    timeout=_capped(self.timeout, seconds), verify=self.verify, allow_redirects=False, stream=True,
                )
                try:
                    content = self._read(response, what)
                finally:
                    response.close()
            except requests.exceptions.SSLError:
                if watchdog.fired:
                    raise late from None
                raise DSMUnreachable(
                    f"TLS handshake with {self.base_url} failed (certificate not trusted? set verify_tls to a CA "
                    "bundle path, or false)"
                ) from None
            except requests.exceptions.Timeout as error:
                if watchdog.fired:
                    raise late from None
                connecting = isinstance(error, requests.exceptions.ConnectTimeout)
                kind = "connecting" if connecting else "waiting for an answer"
                raise DSMUnreachable(f"{self.base_url} timed out while {kind} ({what})") from None
            except requests.exceptions.ConnectionError as error:
                if watchdog.fired:
                    raise late from None
                raise DSMUnreachable(f"cannot connect to {self.base_url}: {_connection_reason(error)}") from None
            except requests.exceptions.RequestException as error:
                if watchdog.fired:
                    raise late from None
                raise DSMUnreachable(f"request to {self.base_url} failed: {type(error).__name__}") from None
            if watchdog.fired:  # the answer ended early because its socket was shut down
                raise late
        if response.is_redirect:
            target = _redirect_origin(response.headers.get("Location", ""))
            raise DSMBadResponse(
                f"{what}: {self.base_url} redirects to {target}; set the NAS url to the address DSM redirects to"
            )
        if response.status_code != 200:
            raise DSMBadResponse(f"{what}: HTTP {response.status_code} from {self.base_url}")
        try:
            body = json.loads(content)
        except ValueError:
            raise DSMBadResponse(f"{what}: the answer is not JSON") from None
        if not isinstance(body, dict) or not isinstance(body.get("success"), bool):
            raise DSMBadResponse(f"{what}: the answer has no 'success' flag")
        return body

    def _read(self, response: requests.Response, what: str) -> bytes:
        """The body of a 200 answer, up to `max_response_bytes` (nothing is read for other statuses)."""
        if response.status_code != 200 or response.is_redirect:
            return b""
        cap = self.max_response_bytes
        too_big = DSMBadResponse(f"{what}: the answer from {self.base_url} is larger than {_mib(cap)}; stopped reading")
        declared = response.headers.get("Content-Length", "")
        if declared.isdigit() and int(declared) > cap:
            raise too_big
        content = bytearray()
        for chunk in response.iter_content(_CHUNK):
            content += chunk
            if len(content) > cap:
                raise too_big  # the caller closes the connection: nothing more is read
        self.last_response_bytes = len(content)
        return bytes(content)

    @staticmethod
    def _error_code(body: dict[str, Any], what: str) -> int:
        error = body.get("error")
        code = error.get("code") if isinstance(error, dict) else None
        if isinstance(code, bool) or not isinstance(code, int):
            raise DSMBadResponse(f"{what} failed without an error code")
        return code

    @staticmethod
    def _data(body: dict[str, Any], what: str) -> dict[str, Any]:
        data = body.get("data")
        if not isinstance(data, dict):
            raise DSMBadResponse(f"{what}: the answer has no 'data' object")
        return data

    # API
    def discover(self) -> dict[str, ApiInfo]:
        """SYNO.API.Info: where Auth and Core.User live and which versions they speak (and the optional
        APIs: DSM.Info, Core.User.PasswordPolicy, Core.User.Group, when offered)."""
        what = "API discovery (SYNO.API.Info)"
        self.progress("discovering APIs")
        body = self._request(
            "query.cgi",
            {"api": "SYNO.API.Info", "version": "1", "method": "query",
             "query": ",".join([AUTH_API, USER_API, *OPTIONAL_APIS])},
            what=what,
            method="GET",
        )
        if not body["success"]:
            raise _api_error(self._error_code(body, what), what)
        data = self._data(body, what)
        apis: dict[str, ApiInfo] = {}
        for name in (AUTH_API, USER_API):
            info = data.get(name)
            if not isinstance(info, dict):
                raise DSMBadResponse(f"{what}: the NAS does not offer {name}")
            path, lo, hi = info.get("path"), info.get("minVersion"), info.get("maxVersion")
            if not isinstance(path, str) or not path or "/" in path or ".." in path:
                raise DSMBadResponse(f"{what}: bad path for {name}")
            if not isinstance(lo, int) or not isinstance(hi, int) or lo > hi:
                raise DSMBadResponse(f"{what}: bad versions for {name}")
            apis[name] = ApiInfo(path, lo, hi)
        if apis[AUTH_API].max_version < 3:
            raise DSMBadResponse("this DSM is too old: SYNO.API.Auth v3 or later is needed")
        if not apis[USER_API].min_version <= 1 <= apis[USER_API].max_version:
            raise DSMBadResponse(f"{what}: SYNO.Core.User v1 is not offered")
        for name in OPTIONAL_APIS:
            info = _optional_api(data.get(name))
            if info is not None:
                apis[name] = info
        self.apis = apis
        return apis

    def _auth_version(self) -> int:
        return min(self.apis[AUTH_API].max_version, 7)

    def login(self) -> None:
        """Sign in with a named session; keep the sid and the SynoToken."""
        if not self.apis:
            self.discover()
        what = "login (SYNO.API.Auth)"
        self.progress(f"logging in as {self.username}")
        body = self._request(
            self.apis[AUTH_API].path,
            {
                "api": AUTH_API,
                "version": str(self._auth_version()),
                "method": "login",
                "account": self.username,
                "passwd": self._password,
                "session": self.session_name,
                "format": "sid",
                "enable_syno_token": "yes",
            },
            what=what,
        )
        if not body["success"]:
            raise _auth_error(self._error_code(body, what), self.username)
        data = self._data(body, what)
        sid = data.get("sid")
        if not isinstance(sid, str) or not sid:
            raise DSMBadResponse(f"{what}: no session id in the answer")
        self._sid = sid
        token = data.get("synotoken")
        # Without CSRF protection DSM may answer a placeholder such as "--------": send nothing then.
        self._token = token if isinstance(token, str) and token.strip("-") else None

    def logout(self) -> None:
        """End the session; never raises (a failed logout is logged, the session expires on its own)."""
        sid, self._sid = self._sid, None
        if not sid or AUTH_API not in self.apis:
            return
        if self._seconds_left(LOGOUT_DEADLINE)[0] <= 0:
            log.warning("DSM logout on %s skipped: the %g s deadline has passed (the session expires on its own)",
                        self.base_url, self.deadline)
            self._token = None
            return
        try:
            body = self._request(
                self.apis[AUTH_API].path,
                {
                    "api": AUTH_API,
                    "version": str(self._auth_version()),
                    "method": "logout",
                    "session": self.session_name,
                    "_sid": sid,
                },
                what="logout",
                limit=LOGOUT_DEADLINE,
            )
            if not body["success"]:
                log.warning("DSM logout on %s answered error %s", self.base_url, body.get("error"))
        except DSMError as error:
            log.warning("DSM logout on %s failed: %s", self.base_url, error)
        finally:
            self._token = None

    def call(self, api: str, method: str, version: int, params: dict[str, Any] | None = None) -> dict[str, Any]:
        """One authenticated call; logs in again once on 106/119. Returns ``data``."""
        what = f"{api} {method}"
        for attempt in (1, 2):
            if not self._sid:
                raise DSMError(f"{what}: not logged in")
            form = {"api": api, "version": str(version), "method": method, "_sid": self._sid, **(params or {})}
            body = self._request(self.apis[api].path, form, what=what)
            if body["success"]:
                return self._data(body, what)
            code = self._error_code(body, what)
            if code in (106, 119) and attempt == 1 and not self._relogged:
                self._relogged = True
                self.progress("session expired; logging in again")
                self._sid = None  # the old session is gone: no logout for it
                self._token = None
                self.login()
                continue
            if code == 105:
                if api == USER_API and method == "list":
                    raise _auth_error(105, self.username)
                raise DSMAuthError(f"the service account {self.username!r} is not an administrator ({what} needs "
                                   "the administrators group) (DSM error 105)", code=105)
            raise _api_error(code, what)
        raise AssertionError("unreachable")  # pragma: no cover

    def dsm_version(self) -> str:
        """The NAS's DSM version as it names it ("DSM 7.2.2-72806 Update 3"); "" when it does not say.

        ``SYNO.DSM.Info getinfo`` (v2 where offered) answers ``version_string`` on DSM 6 and 7.
        """
        info = self.apis.get(INFO_API)
        if info is None:
            return ""
        data = self.call(INFO_API, "getinfo", min(info.max_version, 2))
        version = data.get("version_string")
        if isinstance(version, str) and version.strip():
            return " ".join(version.split())[:100]
        build = data.get("version")
        return f"DSM build {build}" if isinstance(build, str | int) and str(build).strip() else ""

    def count_users(self) -> int:
        """One ``SYNO.Core.User list`` call with limit=1: proves the account may list users; returns the total.

        A non-administrator gets DSMAuthError (105)."""
        data = self.call(
            USER_API, "list", 1, {"type": "local", "offset": "0", "limit": "1", "additional": json.dumps([])}
        )
        total = data.get("total")
        if isinstance(total, bool) or not isinstance(total, int) or not isinstance(data.get("users"), list):
            raise DSMBadResponse("malformed user list: 'users' or 'total' missing")
        return total

    def list_users(self) -> list[DSMUser]:
        """Every local account, page by page. Raises on any fault: a partial list is never returned."""
        users: list[DSMUser] = []
        seen: set[str] = set()
        offset = 0
        total: int | None = None
        while total is None or offset < total:
            data = self.call(
                USER_API,
                "list",
                1,
                {
                    "type": "local",
                    "offset": str(offset),
                    "limit": str(self.page_size),
                    "additional": json.dumps(["email", "description", "expired"]),
                },
            )
            page, page_total = data.get("users"), data.get("total")
            if not isinstance(page, list) or isinstance(page_total, bool) or not isinstance(page_total, int):
                raise DSMBadResponse("malformed user list: 'users' or 'total' missing")
            if total is not None and page_total != total:
                raise DSMBadResponse("the user list changed while it was being read; the next sync will retry")
            total = page_total
            if not page and offset < total:
                raise DSMBadResponse(f"short user list: {offset} of {total} users, then an empty page")
            for raw in page:
                user = parse_user(raw)
                if user.name in seen:
                    raise DSMBadResponse(f"malformed user list: {user.name!r} is listed twice")
                seen.add(user.name)
                users.append(user)
            offset += len(page)
            self.progress(f"listed {min(offset, total)}/{total} users")
        if len(users) != total:
            raise DSMBadResponse(f"user list has {len(users)} entries but DSM announced {total}")
        return users

    # account creation
    def _api_version(self, api: str, purpose: str, wanted: int = 1) -> int:
        """The version to speak for an optional API: `wanted` when offered, else its minVersion (what
        public clients send). Raises a clear DSMApiError when the NAS does not offer the API."""
        info = self.apis.get(api)
        if info is None:
            raise DSMApiError(f"{self.base_url} does not offer {api}, which {purpose} needs (DSM 6.2 or later)")
        return wanted if info.min_version <= wanted <= info.max_version else info.min_version

    def get_user(self, name: str) -> DSMUser | None:
        """One local account as ``SYNO.Core.User get`` reports it (with uid), or None when DSM says
        there is no such account (error USER_NOT_FOUND, an inference)."""
        try:
            data = self.call(USER_API, "get", 1, {"name": name, "additional": json.dumps(ACCOUNT_ADDITIONAL)})
        except DSMApiError as error:
            if error.code == USER_NOT_FOUND:
                return None
            raise
        users = data.get("users")
        if not isinstance(users, list):
            raise DSMBadResponse(f"{USER_API} get: the answer has no 'users' list")
        if not users:
            return None
        user = parse_user(users[0])
        if user.name.lower() != name.lower():
            raise DSMBadResponse(f"{USER_API} get: asked for {name!r}, DSM answered {user.name!r}")
        return user

    def password_policy(self) -> PasswordPolicy:
        """The NAS's password rules for local accounts (``SYNO.Core.User.PasswordPolicy get``)."""
        version = self._api_version(PASSWORD_POLICY_API, "reading the password policy")
        data = self.call(PASSWORD_POLICY_API, "get", version)
        return parse_password_policy(data.get("strong_password"))

    def create_user(self, name: str, password: str, *, email: str = "", description: str = "") -> int | None:
        """Create a local account that can sign in (``expired=never``) and whose password never expires;
        DSM sends no mail. Returns the uid DSM reports, or None. The password travels only in the POST
        body, as is (https; http only to a loopback address)."""
        if not self._may_send_password():
            raise DSMError(f"refusing to send a new account's password to {self.base_url} over plain http: "
                           "use https")
        data = self.call(
            USER_API,
            "create",
            1,
            {
                "name": name,
                "password": password,
                "description": description,
                "email": email,
                "expired": "never",
                "cannot_chg_passwd": "false",
                "passwd_never_expire": "true",
                "notify_by_email": "false",
                "send_password": "false",
            },
        )
        uid = data.get("uid")
        if isinstance(uid, str) and uid.isdigit():
            uid = int(uid)
        return uid if isinstance(uid, int) and not isinstance(uid, bool) else None

    def _may_send_password(self) -> bool:
        parts = urlsplit(self.base_url)
        if parts.scheme == "https":
            return True
        host = parts.hostname or ""
        if host == "localhost":
            return True
        try:
            return ipaddress.ip_address(host).is_loopback
        except ValueError:
            return False

    def join_groups(self, name: str, groups: list[str]) -> None:
        """Add the account to `groups` (``SYNO.Core.User.Group join``, asynchronous), then poll
        ``join_status`` until DSM says the task finished — within the client's deadline (or one
        `call_deadline` when it has none). Nothing is sent for an empty list."""
        if not groups:
            return
        purpose = "adding an account to groups"
        version = self._api_version(GROUP_API, purpose)
        what = f"{GROUP_API} join"
        data = self.call(
            GROUP_API, "join", version,
            {"name": name, "join_group": json.dumps(list(groups)), "leave_group": json.dumps([])},
        )
        task_id = data.get("task_id")
        if not isinstance(task_id, str) or not task_id:
            raise DSMBadResponse(f"{what}: the answer has no task id")
        self.progress(f"adding {name} to {', '.join(groups)}")
        started = time.monotonic()
        ends = started + self.call_deadline
        if self._ends is not None:
            ends = min(ends, self._ends)
        delay = JOIN_POLL_FIRST
        while True:
            status = self.call(GROUP_API, "join_status", version, {"task_id": task_id})
            finished = status.get("finish", status.get("finished"))
            if finished is True:
                if status.get("success") is False or status.get("has_fail") is True:
                    raise DSMApiError(f"{what}: DSM could not add {name!r} to {', '.join(groups)}")
                return
            left = ends - time.monotonic()
            if left <= 0:
                raise DSMApiError(
                    f"{what}: DSM had not finished adding {name!r} to {', '.join(groups)} after "
                    f"{time.monotonic() - started:.0f} s"
                )
            time.sleep(min(delay, left))
            delay = min(delay * 2, JOIN_POLL_MAX)


_INFO_PATH = re.compile(r"[A-Za-z0-9_.-]+(?:/[A-Za-z0-9_.-]+)?")


def _optional_api(info: Any) -> ApiInfo | None:
    """An optional API's discovery entry, or None when absent or malformed (then it is not used).

    DSM 6 may place SYNO.DSM.Info under one sub-folder (``dsm/info.cgi``); nothing deeper and no ``..``
    (the same rule for the account-creation APIs)."""
    if not isinstance(info, dict):
        return None
    path, lo, hi = info.get("path"), info.get("minVersion"), info.get("maxVersion")
    if not isinstance(path, str) or not _INFO_PATH.fullmatch(path) or ".." in path:
        return None
    if isinstance(lo, bool) or isinstance(hi, bool) or not isinstance(lo, int) or not isinstance(hi, int) or lo > hi:
        return None
    return ApiInfo(path, lo, hi)


def _capped(timeout: Timeout, seconds: float) -> Timeout:
    """requests' per-operation timeout(s), none longer than the seconds left for the call."""
    if isinstance(timeout, tuple):
        return (min(timeout[0], seconds), min(timeout[1], seconds))
    return min(timeout, seconds)


def _redirect_origin(location: str) -> str:
    """scheme://host[:port] of a redirect target (no path, query or user info), for an error message."""
    try:
        parts = urlsplit(location)
        host = parts.hostname
        port = parts.port
    except ValueError:
        return "an invalid address"
    if not parts.scheme or not host:
        return "another path"
    host = f"[{host}]" if ":" in host else host
    return f"{parts.scheme}://{host}" + (f":{port}" if port else "")


def _connection_reason(error: BaseException) -> str:
    """A short reason from a requests ConnectionError chain (refused, no route, DNS, ...)."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, ConnectionRefusedError):
            return "connection refused"
        if isinstance(current, socket.gaierror):
            return "host name not found"
        if isinstance(current, TimeoutError | socket.timeout):
            return "timed out"
        if isinstance(current, OSError) and current.errno is not None and current.strerror:
            return current.strerror.lower()
        nxt = current.__cause__ or current.__context__
        if nxt is None and current.args and isinstance(current.args[-1], BaseException):
            nxt = current.args[-1]
        current = nxt
    text = str(error)
    if "Connection refused" in text:
        return "connection refused"
    if "Name or service not known" in text or "getaddrinfo" in text:
        return "host name not found"
    return "connection failed"
