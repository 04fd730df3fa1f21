"""A real SMTP server for rayo's email tests (aiosmtpd), with STARTTLS and AUTH.

    python smtp_server.py <port> <dir> [<cert.pem> <key.pem>]

Each message received is written to <dir>/<n>.json: {"tls": bool, "authenticated": bool,
"mail_from", "rcpt_tos", "data"}. Before each message, <dir>/mode is read:
  ok      accept (the default)
  refuse  answer 550 with words the test looks for
  drop    close the connection without answering
  stall   never answer
It prints "ready" once it listens.
"""
import asyncio
import json
import os
import ssl
import sys
import time

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

port = int(sys.argv[1])
out = sys.argv[2]
tls = None
if len(sys.argv) > 4:
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls.load_cert_chain(sys.argv[3], sys.argv[4])


def mode():
    try:
        with open(os.path.join(out, "mode")) as f:
            return f.read().strip() or "ok"
    except FileNotFoundError:
        return "ok"


class Handler:
    async def handle_DATA(self, server, session, envelope):
        m = mode()
        if m == "refuse":
            return "550 5.7.1 Mailbox unavailable: refused by the test's policy"
        if m == "drop":
            server.transport.close()
            return "421 closing"
        if m == "stall":
            await asyncio.sleep(3600)
        n = len([f for f in os.listdir(out) if f.endswith(".json")])
        with open(os.path.join(out, f"{n}.json.tmp"), "w") as f:
            json.dump(
                {
                    "tls": session.ssl is not None,
                    "authenticated": bool(session.authenticated),
                    "mail_from": envelope.mail_from,
                    "rcpt_tos": envelope.rcpt_tos,
                    "data": envelope.original_content.decode("utf-8", "replace"),
                },
                f,
            )
        os.rename(os.path.join(out, f"{n}.json.tmp"), os.path.join(out, f"{n}.json"))
        return "250 2.0.0 Queued as test-%d" % n


def authenticate(server, session, envelope, mechanism, auth_data):
    if isinstance(auth_data, LoginPassword) and auth_data.login == b"rayo" and auth_data.password == b"s3cret":
        return AuthResult(success=True)
    return AuthResult(success=False, handled=False)


controller = Controller(
    Handler(),
    hostname="127.0.0.1",
    port=port,
    tls_context=tls,
    require_starttls=False,
    authenticator=authenticate,
    auth_require_tls=True,
    decode_data=False,
)
controller.start()
print("ready", flush=True)
try:
    time.sleep(10**9)
finally:
    controller.stop()
