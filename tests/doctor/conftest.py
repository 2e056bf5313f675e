"""Fixtures for `hub doctor`: a live hub, the fake upstream, the DSM fake, and an HTTPS front.

`https_front` serves a discovery document over TLS with a self-signed certificate (the DSM fake's
`self_signed_cert`), with a chosen `issuer` and a `Date` header shifted by `skew` seconds — a reverse
proxy in front of a hub, as the doctor sees it from inside the deployment.
"""

from __future__ import annotations

import email.utils
import io
import json
import ssl
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tests.fakes.dsm import FakeDSM, self_signed_cert

SERVICE_USER = "hub-sync"
SERVICE_PASSWORD = "s3cret-Pa55word!"


class HttpsFront:
    def __init__(self, cert: tuple[str, str]) -> None:
        self.cert_file = cert[0]
        self.issuer = ""  # what the discovery document names (default: its own URL)
        self.skew = 0.0  # the server's clock minus the real time, in seconds
        self.send_date = True
        front = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def date_time_string(self, timestamp=None):  # the Date header (http.server adds it)
                return email.utils.formatdate(time.time() + front.skew, usegmt=True)

            def send_header(self, keyword, value):
                if keyword.lower() == "date" and not front.send_date:
                    return
                super().send_header(keyword, value)

            def do_GET(self) -> None:
                if self.path == "/.well-known/openid-configuration":
                    body = json.dumps({"issuer": front.issuer or front.url, "jwks_uri": f"{front.url}/jwks",
                                       "authorization_endpoint": f"{front.url}/authorize",
                                       "token_endpoint": f"{front.url}/token"}).encode()
                    status = 200
                elif self.path == "/jwks":
                    body, status = b'{"keys": []}', 200
                else:
                    body, status = b"{}", 404
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(*cert)
        self._server.socket = context.wrap_socket(self._server.socket, server_side=True)
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        daemon=True)

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> HttpsFront:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def cert_for_days(directory: str, days: int) -> tuple[str, str]:
    """A self-signed certificate for 127.0.0.1 valid `days` days (the DSM fake's is valid one day)."""
    import datetime
    import ipaddress
    import os

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "hub-front")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=days))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = os.path.join(directory, "front.crt"), os.path.join(directory, "front.key")
    with open(cert_path, "wb") as f:
        f.write(cert.public_bytes(serialization.Encoding.PEM))
    with open(key_path, "wb") as f:
        f.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption()))
    return cert_path, key_path


@pytest.fixture
def https_front(tmp_path):
    """Self-signed, valid one day (the DSM fake's certificate)."""
    front = HttpsFront(self_signed_cert(str(tmp_path))).start()
    yield front
    front.stop()


@pytest.fixture
def https_front_90_days(tmp_path):
    front = HttpsFront(cert_for_days(str(tmp_path), 90)).start()
    yield front
    front.stop()


@pytest.fixture
def doctor_dsm():
    fake = FakeDSM("dsm7", csrf=True)
    fake.accounts = {SERVICE_USER: fake.accounts["hub-sync"]}
    fake.add_user("mael.valais", email="mael@example.com")
    fake.add_user("maman")
    fake.start()
    yield fake
    fake.stop()


@pytest.fixture
def doctor_nas(doctor_dsm, transactional_db):
    from accounts.services import declare_household
    from synology.services import declare_nas

    household = declare_household("valais", "Valais family")
    return declare_nas("ds923", household=household, base_url=doctor_dsm.url, name="DS923+",
                       service_username=SERVICE_USER, service_password=SERVICE_PASSWORD)


@pytest.fixture
def doctor_upstream(transactional_db, upstream_provider):
    from tests.conftest import declare_fake_upstream

    return declare_fake_upstream("google", upstream_provider, "Google")


def run_doctor(**kwargs) -> tuple[int, list[str]]:
    """`manage.py hub doctor`: (exit status, output lines)."""
    from django.core.management import call_command

    out = io.StringIO()
    status = 0
    try:
        call_command("hub", "doctor", stdout=out, **kwargs)
    except SystemExit as exit_:
        status = exit_.code
    return status, out.getvalue().splitlines()


def check_lines(lines: list[str]) -> dict[str, str]:
    """The check lines by what they check: {"nas ds923": "ok nas ds923: …"}."""
    found = {}
    for line in lines:
        status, _, rest = line.partition(" ")
        if status in {"ok", "warn", "fail"}:
            found[rest.split(":", 1)[0]] = line
    return found
