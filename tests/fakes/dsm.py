"""A real HTTP fake of the DSM Web API parts the hub uses (127.0.0.1, random port).

Speaks SYNO.API.Info / SYNO.API.Auth (login, logout) / SYNO.Core.User list / SYNO.DSM.Info getinfo
(the version, `fake.dsm_version`; `fake.offer_info = False` hides the API) as documented in
../shared/reference/dsm-webapi.md, in DSM 7 mode (Auth on entry.cgi up to v7) or DSM 6.2 mode
(Auth on auth.cgi up to v6; entry.cgi answers 102 for Auth). Optional CSRF mode requires the
SynoToken in the X-SYNO-TOKEN header. Accounts can need 2FA (403), be non-admins (105), disabled
(401) or locked (411).

Account creation ("Creating and changing accounts" in the reference): SYNO.Core.User `create` /
`get` / `set`, SYNO.Core.User.PasswordPolicy `get` (`fake.password_policy`, the `strong_password`
object; the fake really checks passwords against it) and SYNO.Core.User.Group `join` /
`join_status` (asynchronous: a task id, finished on the `fake.join_polls`-th status poll; memberships
in `fake.groups[name]`, known groups in `fake.dsm_groups`). `fake.offer_account_apis = False` hides
the PasswordPolicy and Group APIs. Created accounts appear in later listings (email, description,
expired "normal"); their passwords are kept apart in `fake.passwords`. Every user-management call
needs an administrator session (105 otherwise). DSM's codes for these failures are undocumented; the
fake answers inferred ones (same values as synology.dsm): 3100 no such account (get/set/join), 3101
name taken (case-insensitively), 3102 bad name (DSM's forbidden punctuation, whitespace, a leading
"-", more than 64 characters, a reserved system name), 3103 weak password (the policy, or more than
127 characters); an unknown group or task is 120. Names are looked up case-insensitively.

Fault switches (`fake.fault(...)`): connection refused (`fake.stop()`), slow answers (timeouts),
HTTP 500, non-JSON, a 307 redirect, a missing `data`, `success: false` without a code, an error
code, failure on page N of the listing, an expired session (119 once). Open sessions are tracked: `fake.sessions`.
A NAS that drips its answer one byte every `seconds` (`drip`: status line, headers and body;
`drip_body`: headers at once, then the body), and one whose answer never ends (`oversize`: no
Content-Length, bytes until the client hangs up; `oversize_declared`: a 100 MiB Content-Length first);
`fake.bytes_sent` counts what those two wrote. A NAS that goes down mid-way (`down_after`: the
matching call is carried out and answered, then the fake stops listening and forgets its sessions, as
a NAS that lost power; `fake.start()` brings it back on the same port).

    with FakeDSM(mode="dsm7") as fake:
        fake.add_user("mael.valais", email="Mael@Example.com")
        fake.url  # http://127.0.0.1:PORT
"""

from __future__ import annotations

import json
import secrets
import ssl
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit


@dataclass
class ServiceAccount:
    password: str
    admin: bool = True
    otp: bool = False
    disabled: bool = False
    locked: bool = False


@dataclass
class Fault:
    kind: str  # http500 | nonjson | no_data | no_code | code | sleep | expire_session | malformed | redirect
    #           | drip | drip_body (one byte every `seconds`) | oversize | oversize_declared (an endless body)
    #           | down_after (answer, then stop listening and forget the sessions)
    api: str | None = None  # None: any API
    method: str | None = None
    page: int | None = None  # list calls only: 0-based page index (offset // limit)
    times: int | None = None  # None: every time
    code: int = 117
    seconds: float = 0.0
    location: str = ""  # redirect: the Location header


# DSM's user-management error codes (undocumented: inferences, the same values as synology.dsm).
USER_NOT_FOUND = 3100
NAME_TAKEN = 3101
BAD_NAME = 3102
WEAK_PASSWORD = 3103
NAME_MAX = 64
PASSWORD_MAX = 127
FORBIDDEN_NAME_CHARS = set('!"#$%&\'()*+,/:;<=>?@[\\]^`{|}~')
RESERVED_NAMES = {"root", "daemon", "nobody", "system", "admin", "guest"}
DEFAULT_POLICY = {
    "exclude_username": True, "history_num": 0, "included_numeric_char": True, "included_special_char": False,
    "min_length": 8, "min_length_enable": True, "mixed_case": True,
}


@dataclass
class Session:
    sid: str
    account: str
    name: str
    token: str


@dataclass
class RequestLog:
    http_method: str
    path: str
    query: str
    params: dict[str, str]
    headers: dict[str, str] = field(default_factory=dict)


class FakeDSM:
    def __init__(
        self, mode: str = "dsm7", *, csrf: bool = True, include_uid: bool = False, tls: tuple[str, str] | None = None
    ) -> None:
        """`tls`: (certificate file, key file) to serve HTTPS instead of HTTP."""
        assert mode in ("dsm7", "dsm6")
        self.tls = tls
        self.mode = mode
        self.csrf = csrf
        self.include_uid = include_uid
        self.accounts: dict[str, ServiceAccount] = {"hub-sync": ServiceAccount("s3cret-Pa55word!")}
        self.users: list[dict[str, Any]] = []
        self.faults: list[Fault] = []
        self.sessions: dict[str, Session] = {}
        self.requests: list[RequestLog] = []
        self.logins = 0
        self.logouts = 0
        self.max_page: int | None = None  # cap `limit` like a real server might
        # What SYNO.DSM.Info getinfo reports as version_string (DSM 6.2 mode: a 6.2 string).
        self.dsm_version = "DSM 7.2.2-72806 Update 3" if mode == "dsm7" else "DSM 6.2.4-25556 Update 7"
        self.offer_info = True
        # Account creation
        self.offer_account_apis = True  # SYNO.Core.User.PasswordPolicy and SYNO.Core.User.Group
        self.password_policy: dict[str, Any] = dict(DEFAULT_POLICY)
        self.passwords: dict[str, str] = {}  # accounts created or changed through the API
        self.groups: dict[str, set[str]] = {}  # account name -> its groups (created accounts start in "users")
        self.dsm_groups: set[str] = {"administrators", "users", "http"}
        self.join_polls = 2  # join_status answers finish on this poll of a task
        self.tasks: dict[str, dict[str, Any]] = {}
        self.bytes_sent = 0  # oversize faults: bytes of endless body written before the client hung up
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.port = 0

    # lifecycle
    def start(self) -> FakeDSM:
        fake = self

        class Handler(_Handler):
            dsm = fake

        self._wake.clear()
        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        if self.tls:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(*self.tls)
            self._server.socket = context.wrap_socket(self._server.socket, server_side=True)
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self

    def go_down(self) -> None:
        """The NAS loses power: it stops listening and its sessions are gone (`start()` brings it back)."""
        self.stop()
        with self._lock:
            self.sessions.clear()

    def stop(self) -> None:
        """Close the listening socket: later connections are refused."""
        self._wake.set()
        if self._server:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> FakeDSM:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}"

    # data
    def add_user(self, name: str, email: str = "", description: str = "", expired: bool = False, uid: int = 0) -> None:
        with self._lock:
            self.users.append({
                "name": name, "email": email, "description": description,
                "expired": "now" if expired else "normal", "uid": uid or 1026 + len(self.users),
            })

    def set_users(self, users: list[dict[str, Any]]) -> None:
        with self._lock:
            self.users = [dict(u) for u in users]

    def find_user(self, name: str) -> dict[str, Any] | None:
        """The account named `name`, compared case-insensitively (as DSM does), or None."""
        with self._lock:
            return next((u for u in self.users if u["name"].lower() == name.lower()), None)

    def password_problem(self, name: str, password: str) -> str | None:
        """Why `fake.password_policy` refuses `password` for account `name`, or None."""
        policy = self.password_policy
        if not password:
            return "empty"
        if len(password) > PASSWORD_MAX:
            return "too long"
        if policy.get("min_length_enable") and len(password) < int(policy.get("min_length") or 0):
            return "too short"
        if policy.get("mixed_case") and not (any(c.islower() for c in password) and any(c.isupper() for c in password)):
            return "no mixed case"
        if policy.get("included_numeric_char") and not any(c.isdigit() for c in password):
            return "no digit"
        if policy.get("included_special_char") and all(c.isalnum() for c in password):
            return "no special character"
        if policy.get("exclude_username") and name.lower() in password.lower():
            return "contains the user name"
        return None

    def fault(self, kind: str, **kwargs: Any) -> Fault:
        f = Fault(kind, **kwargs)
        self.faults.append(f)
        return f

    def clear_faults(self) -> None:
        self.faults.clear()

    @property
    def open_sessions(self) -> list[Session]:
        return list(self.sessions.values())

    # internals
    def _take_fault(self, api: str, method: str, page: int | None) -> Fault | None:
        with self._lock:
            for f in self.faults:
                if f.api not in (None, api) or f.method not in (None, method):
                    continue
                if f.page is not None and f.page != page:
                    continue
                if f.times is not None:
                    if f.times <= 0:
                        continue
                    f.times -= 1
                return f
        return None


def _ok(data: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"success": True, "data": data} if data is not None else {"success": True}


def _err(code: int, **extra: Any) -> dict[str, Any]:
    return {"success": False, "error": {"code": code, **extra}}


class _Handler(BaseHTTPRequestHandler):
    dsm: FakeDSM
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out in two writes: no 40 ms delayed-ACK stall

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    def do_GET(self) -> None:
        self._handle(parse_qs(urlsplit(self.path).query))

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length).decode()
        params = parse_qs(urlsplit(self.path).query)
        params.update(parse_qs(body))
        self._handle(params)

    _drip: Fault | None = None
    _down_after = False

    def _send(self, status: int, body: bytes, content_type: str = "application/json") -> None:
        if self._drip is not None:
            return self._send_dripping(status, body, content_type, self._drip)
        if self._down_after:
            # Down before the answer leaves: the client's next call (new connection) is refused.
            self.dsm.go_down()
            self.close_connection = True
        try:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            if self._down_after:
                self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            pass

    def _send_dripping(self, status: int, body: bytes, content_type: str, fault: Fault) -> None:
        head = (f"HTTP/1.1 {status} OK\r\nContent-Type: {content_type}\r\nContent-Length: {len(body)}\r\n"
                "Connection: close\r\n\r\n").encode()
        self.close_connection = True
        try:
            if fault.kind == "drip_body":
                self.wfile.write(head)
                self.wfile.flush()
                head = b""
            data = head + body
            for i in range(len(data)):
                self.wfile.write(data[i:i + 1])
                self.wfile.flush()
                if self.dsm._wake.wait(fault.seconds):
                    return  # the fake is stopping
        except (BrokenPipeError, ConnectionResetError):
            pass

    def _send_endless(self, fault: Fault) -> None:
        self.close_connection = True
        chunk = b'{"success": true, "data": {"users": [' + b'{"name": "x"}, ' * 4000
        try:
            self.wfile.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n")
            if fault.kind == "oversize_declared":
                self.wfile.write(f"Content-Length: {100 * 1024 * 1024}\r\n".encode())
            self.wfile.write(b"\r\n")
            while not self.dsm._wake.is_set():
                self.wfile.write(chunk)
                with self.dsm._lock:
                    self.dsm.bytes_sent += len(chunk)
                if fault.kind == "oversize_declared" and self.dsm.bytes_sent > 100 * 1024 * 1024:
                    return
        except (BrokenPipeError, ConnectionResetError):
            pass

    def _json(self, payload: dict[str, Any]) -> None:
        self._send(200, json.dumps(payload).encode())

    def _handle(self, raw: dict[str, list[str]]) -> None:
        dsm = self.dsm
        params = {k: v[-1] for k, v in raw.items()}
        split = urlsplit(self.path)
        dsm.requests.append(RequestLog(self.command, split.path, split.query, params, dict(self.headers)))
        api, method = params.get("api", ""), params.get("method", "")
        page = None
        if api == "SYNO.Core.User" and method == "list":
            limit = int(params.get("limit", "-1"))
            page = int(params.get("offset", "0")) // limit if limit > 0 else 0
        fault = dsm._take_fault(api, method, page)
        if fault is not None:
            if fault.kind == "sleep":
                dsm._wake.wait(fault.seconds)
            elif fault.kind == "down_after":
                self._down_after = True  # the call is carried out and answered, then the NAS is down
            elif fault.kind in ("drip", "drip_body"):
                self._drip = fault  # the real answer, one byte at a time
            elif fault.kind in ("oversize", "oversize_declared"):
                return self._send_endless(fault)
            elif fault.kind == "redirect":
                try:
                    self.send_response(307)
                    self.send_header("Location", fault.location)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                except (BrokenPipeError, ConnectionResetError):
                    pass
                return None
            elif fault.kind == "http500":
                return self._send(500, b"<html>Internal Server Error</html>", "text/html")
            elif fault.kind == "nonjson":
                return self._send(200, b"<html>Welcome to DSM</html>", "text/html")
            elif fault.kind == "no_data":
                return self._json({"success": True})
            elif fault.kind == "no_code":
                return self._json({"success": False})
            elif fault.kind == "code":
                return self._json(_err(fault.code))
            elif fault.kind == "malformed":
                return self._json(_ok({"total": 3, "offset": 0, "users": [{"email": "x@example.com"}]}))
            elif fault.kind == "expire_session":
                with dsm._lock:
                    dsm.sessions.clear()  # DSM dropped every session (e.g. restart)
                return self._json(_err(119))
        path = split.path
        if path == "/webapi/query.cgi" and api == "SYNO.API.Info":
            return self._json(_ok(self._info(params.get("query", "ALL"))))
        if api == "SYNO.API.Auth":
            expected = "/webapi/entry.cgi" if dsm.mode == "dsm7" else "/webapi/auth.cgi"
            if path != expected:
                return self._json(_err(102))
            version = int(params.get("version", "0"))
            if version > (7 if dsm.mode == "dsm7" else 6) or version < 1:
                return self._json(_err(104))
            if method == "login":
                return self._json(self._login(params))
            if method == "logout":
                return self._json(self._logout(params))
            return self._json(_err(103))
        if api == "SYNO.Core.User" and path == "/webapi/entry.cgi":
            session = self._session(params)
            if session is None:
                return self._json(_err(119))
            handler = {"list": self._list, "get": self._get, "create": self._create, "set": self._set}.get(method)
            if handler is None:
                return self._json(_err(103))
            if not dsm.accounts[session.account].admin:
                return self._json(_err(105))
            return self._json(handler(params))
        account_apis = {
            "SYNO.Core.User.PasswordPolicy": {"get": self._policy},
            "SYNO.Core.User.Group": {"join": self._join, "join_status": self._join_status},
        }
        if api in account_apis and dsm.offer_account_apis and path == "/webapi/entry.cgi":
            session = self._session(params)
            if session is None:
                return self._json(_err(119))
            if params.get("version") != "1":
                return self._json(_err(104))
            handler = account_apis[api].get(method)
            if handler is None:
                return self._json(_err(103))
            if not dsm.accounts[session.account].admin:
                return self._json(_err(105))
            return self._json(handler(params))
        info_path = "/webapi/entry.cgi" if dsm.mode == "dsm7" else "/webapi/dsm/info.cgi"
        if api == "SYNO.DSM.Info" and dsm.offer_info and path == info_path:
            session = self._session(params)
            if session is None:
                return self._json(_err(119))
            if method != "getinfo":
                return self._json(_err(103))
            if not 1 <= int(params.get("version", "0")) <= 2:
                return self._json(_err(104))
            build = dsm.dsm_version.split("-")[-1].split()[0] if "-" in dsm.dsm_version else ""
            return self._json(_ok({
                "codepage": "enu", "model": "DS923+", "ram": 4096, "serial": "XXXXXXXXXXX", "temperature": 40,
                "temperature_warn": False, "time": "Thu Apr 30 14:57:35 2025", "uptime": 3258607,
                "version": build, "version_string": dsm.dsm_version,
            }))
        return self._json(_err(102))

    def _info(self, query: str) -> dict[str, Any]:
        auth = (
            {"path": "entry.cgi", "minVersion": 1, "maxVersion": 7, "requestFormat": "JSON"}
            if self.dsm.mode == "dsm7"
            else {"path": "auth.cgi", "minVersion": 1, "maxVersion": 6}
        )
        apis = {
            "SYNO.API.Info": {"path": "query.cgi", "minVersion": 1, "maxVersion": 1},
            "SYNO.API.Auth": auth,
            "SYNO.Core.User": {"path": "entry.cgi", "minVersion": 1, "maxVersion": 1},
        }
        if self.dsm.offer_account_apis:
            apis["SYNO.Core.User.PasswordPolicy"] = {"path": "entry.cgi", "minVersion": 1, "maxVersion": 1}
            apis["SYNO.Core.User.Group"] = {"path": "entry.cgi", "minVersion": 1, "maxVersion": 1}
        if self.dsm.offer_info:
            # DSM 6.2 reports the info API in a sub-folder (the client must follow the reported path).
            apis["SYNO.DSM.Info"] = {
                "path": "entry.cgi" if self.dsm.mode == "dsm7" else "dsm/info.cgi", "minVersion": 1, "maxVersion": 2,
            }
        if query == "ALL":
            return apis
        return {name: apis[name] for name in query.split(",") if name in apis}

    def _login(self, params: dict[str, str]) -> dict[str, Any]:
        dsm = self.dsm
        account = dsm.accounts.get(params.get("account", ""))
        if account is None or account.password != params.get("passwd"):
            return _err(400)
        if account.disabled:
            return _err(401)
        if account.locked:
            return _err(411)
        if account.otp and not params.get("otp_code"):
            return _err(403, errors={"types": [{"type": "otp"}], "token": "x"})
        sid = secrets.token_urlsafe(16)
        token = secrets.token_urlsafe(8) if params.get("enable_syno_token") == "yes" else "--------"
        with dsm._lock:
            dsm.sessions[sid] = Session(sid, params["account"], params.get("session", ""), token)
            dsm.logins += 1
        data: dict[str, Any] = {"sid": sid, "synotoken": token}
        if dsm.mode == "dsm7":
            data.update({"account": params["account"], "device_id": "", "is_portal_port": False, "ik_message": ""})
        return _ok(data)

    def _session(self, params: dict[str, str]) -> Session | None:
        sid = params.get("_sid") or _cookie(self.headers.get("Cookie", ""), "id")
        session = self.dsm.sessions.get(sid or "")
        if session is None:
            return None
        if self.dsm.csrf:
            token = self.headers.get("X-SYNO-TOKEN") or params.get("SynoToken")
            if token != session.token:
                return None
        return session

    def _logout(self, params: dict[str, str]) -> dict[str, Any]:
        dsm = self.dsm
        with dsm._lock:
            session = dsm.sessions.pop(params.get("_sid", ""), None)
            dsm.logouts += 1
        return _ok() if session is not None else _err(119)

    def _list(self, params: dict[str, str]) -> dict[str, Any]:
        dsm = self.dsm
        if params.get("type", "local") != "local":
            return _err(120)
        offset, limit = int(params.get("offset", "0")), int(params.get("limit", "-1"))
        if dsm.max_page and (limit < 0 or limit > dsm.max_page):
            limit = dsm.max_page
        additional = json.loads(params.get("additional", "[]") or "[]")
        with dsm._lock:
            users = list(dsm.users)
        chunk = users[offset:] if limit < 0 else users[offset : offset + limit]
        out = []
        for user in chunk:
            item: dict[str, Any] = {"name": user["name"]}
            for key in additional:
                if key in user:
                    item[key] = user[key]
            if dsm.include_uid:
                item["uid"] = user.get("uid")
            out.append(item)
        return _ok({"offset": offset, "total": len(users), "users": out})


    # account creation
    @staticmethod
    def _name_problem(name: str) -> bool:
        return (
            not name or len(name) > NAME_MAX or name.startswith("-") or name.lower() in RESERVED_NAMES
            or any(c in FORBIDDEN_NAME_CHARS or c.isspace() or not c.isprintable() for c in name)
        )

    def _get(self, params: dict[str, str]) -> dict[str, Any]:
        user = self.dsm.find_user(params.get("name", ""))
        if user is None:
            return _err(USER_NOT_FOUND)
        additional = json.loads(params.get("additional", "[]") or "[]")
        item: dict[str, Any] = {"name": user["name"], "uid": user.get("uid")}
        for key in additional:
            if key in user:
                item[key] = user[key]
        return _ok({"users": [item]})

    def _create(self, params: dict[str, str]) -> dict[str, Any]:
        dsm = self.dsm
        name, password = params.get("name"), params.get("password")
        if name is None or password is None:
            return _err(114)
        if self._name_problem(name):
            return _err(BAD_NAME)
        if dsm.password_problem(name, password):
            return _err(WEAK_PASSWORD)
        with dsm._lock:
            if any(u["name"].lower() == name.lower() for u in dsm.users):
                return _err(NAME_TAKEN)
            uid = max([1025, *(int(u.get("uid") or 0) for u in dsm.users)]) + 1
            dsm.users.append({
                "name": name, "email": params.get("email", ""), "description": params.get("description", ""),
                # The pitfall in the reference: expired=now makes an account that cannot sign in.
                "expired": "now" if params.get("expired") == "now" else "normal", "uid": uid,
            })
            dsm.passwords[name] = password
            dsm.groups[name] = {"users"}
        return _ok({"name": name, "uid": uid})

    def _set(self, params: dict[str, str]) -> dict[str, Any]:
        dsm = self.dsm
        user = dsm.find_user(params.get("name", ""))
        if user is None:
            return _err(USER_NOT_FOUND)
        new_name = params.get("new_name") or user["name"]
        if new_name != user["name"]:
            if self._name_problem(new_name):
                return _err(BAD_NAME)
            other = dsm.find_user(new_name)
            if other is not None and other is not user:
                return _err(NAME_TAKEN)
        password = params.get("password")
        if password and dsm.password_problem(new_name, password):
            return _err(WEAK_PASSWORD)
        with dsm._lock:
            old = user["name"]
            user["name"] = new_name
            for key in ("email", "description"):
                if key in params:
                    user[key] = params[key]
            if params.get("expired") in ("now", "never", "normal"):
                user["expired"] = "now" if params["expired"] == "now" else "normal"
            if old in dsm.passwords:
                dsm.passwords[new_name] = dsm.passwords.pop(old)
            if old in dsm.groups:
                dsm.groups[new_name] = dsm.groups.pop(old)
            if password:
                dsm.passwords[new_name] = password
        return _ok({"name": new_name, "uid": user.get("uid")})

    def _policy(self, params: dict[str, str]) -> dict[str, Any]:
        return _ok({"enable_reset_passwd_by_email": False, "password_must_change": False,
                    "strong_password": dict(self.dsm.password_policy)})

    def _join(self, params: dict[str, str]) -> dict[str, Any]:
        dsm = self.dsm
        user = dsm.find_user(params.get("name", ""))
        if user is None:
            return _err(USER_NOT_FOUND)
        try:
            join = json.loads(params.get("join_group", "[]") or "[]")
            leave = json.loads(params.get("leave_group", "[]") or "[]")
        except ValueError:
            return _err(120)
        if not isinstance(join, list) or not isinstance(leave, list):
            return _err(120)
        if any(not isinstance(g, str) or g not in dsm.dsm_groups for g in join + leave):
            return _err(120)
        task_id = f"@administrators/groupbatch{int(time.time())}{secrets.token_hex(4).upper()}"
        with dsm._lock:
            dsm.tasks[task_id] = {"name": user["name"], "uid": user.get("uid"), "join": join, "leave": leave,
                                  "polls": 0}
        return _ok({"task_id": task_id})

    def _join_status(self, params: dict[str, str]) -> dict[str, Any]:
        dsm = self.dsm
        with dsm._lock:
            task = dsm.tasks.get(params.get("task_id", ""))
            if task is None:
                return _err(120)
            task["polls"] += 1
            finished = task["polls"] >= dsm.join_polls
            if finished and not task.get("done"):
                groups = dsm.groups.setdefault(task["name"], set())
                groups.update(task["join"])
                groups.difference_update(task["leave"])
                task["done"] = True
            total = len(task["join"]) + len(task["leave"])
        return _ok({
            "auto_remove": False,
            "data": {"name": task["name"], "pid": 4242, "progress": total if finished else 0, "total": total,
                     "uid": task["uid"]},
            "finish": finished,
            "info": {"api": "SYNO.Core.User.Group", "group": "administrators", "method": "join",
                     "prefix": "groupbatch", "version": 1},
            "success": True,
        })


def _cookie(header: str, name: str) -> str | None:
    for part in header.split(";"):
        key, _, value = part.strip().partition("=")
        if key == name:
            return value
    return None


def self_signed_cert(directory: str) -> tuple[str, str]:
    """Write a self-signed certificate for 127.0.0.1 into `directory`; return (cert path, key path)."""
    import datetime
    import ipaddress
    import os

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "fake-dsm")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = os.path.join(directory, "dsm.crt"), os.path.join(directory, "dsm.key")
    with open(cert_path, "wb") as f:
        f.write(cert.public_bytes(serialization.Encoding.PEM))
    with open(key_path, "wb") as f:
        f.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption()))
    return cert_path, key_path
