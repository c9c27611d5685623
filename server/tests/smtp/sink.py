"""A real SMTP server for Porta's delivery tests: aiosmtpd on loopback, STARTTLS required,
AUTH LOGIN/PLAIN required (after TLS), every accepted message written to a directory.

usage: python sink.py DIR PORT USER PASSWORD

Writes DIR/ca.pem (the CA that signed the server's certificate for "localhost"), then prints
"ready" on stdout once it listens. Each message lands in DIR/mail/<n>.eml. Exits when stdin
closes, so it never outlives the test that started it.
"""

import os
import ssl
import sys

import warnings

import trustme
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult


class Maildir:
    def __init__(self, path):
        self.path = path
        self.count = 0
        os.makedirs(path, exist_ok=True)

    async def handle_DATA(self, server, session, envelope):
        self.count += 1
        tmp = os.path.join(self.path, f".{self.count}.tmp")
        with open(tmp, "wb") as f:
            f.write(b"X-Envelope-To: " + ",".join(envelope.rcpt_tos).encode() + b"\r\n")
            f.write(envelope.content)
        os.rename(tmp, os.path.join(self.path, f"{self.count}.eml"))
        return "250 Message accepted"


warnings.filterwarnings("ignore", category=DeprecationWarning)


def main():
    out, port, user, password = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
    ca = trustme.CA()
    cert = ca.issue_cert("localhost", "127.0.0.1")
    ca.cert_pem.write_to_path(os.path.join(out, "ca.pem"))
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    cert.configure_cert(tls)

    def authenticate(server, session, envelope, mechanism, auth_data):
        ok = auth_data.login == user.encode() and auth_data.password == password.encode()
        # handled=False: aiosmtpd itself answers 535 to a failure.
        return AuthResult(success=ok, handled=False)

    controller = Controller(
        Maildir(os.path.join(out, "mail")),
        hostname="127.0.0.1",
        port=port,
        server_hostname="localhost",
        tls_context=tls,
        require_starttls=True,
        auth_require_tls=True,
        auth_required=True,
        authenticator=authenticate,
    )
    controller.start()
    print("ready", flush=True)
    sys.stdin.read()
    controller.stop()


if __name__ == "__main__":
    main()
