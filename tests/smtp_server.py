#!/usr/bin/python3
"""smtp_server.py — a test SMTP receiver for ipcased (aiosmtpd, 127.0.0.1 only).

STARTTLS (or implicit TLS) and AUTH PLAIN/LOGIN are required, as on a real
submission server.  Each accepted message is written to a Maildir and
described by one JSON line in a log; every SMTP command line received is
written to a command log, so a test can prove that no command was injected.
Faults on demand: answer RCPT or DATA with a chosen code, for every message
or only for chosen recipients.

Run with Debian's /usr/bin/python3 (it has aiosmtpd).  The listening port is
printed on stdout as one line, once the server accepts connections.
"""

import argparse
import asyncio
import email.parser
import email.policy
import hmac
import json
import logging
import os
import signal
import socket
import ssl
import sys
import time
import warnings

from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword


def parse_args(argv):
    p = argparse.ArgumentParser(
        description="Test SMTP server for ipcased: TLS and AUTH required, "
        "Maildir + JSON log of each message, command log, fault injection.",
        epilog="Example: %(prog)s --port 0 --cert s.pem --key s.key "
        "--user ipcased --password secret --maildir M --log mail.jsonl "
        "--command-log cmds.log --fail-rcpt tempfail@x.example=451")
    p.add_argument("--host", default="127.0.0.1",
                   help="address to listen on; loopback only (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=0,
                   help="port; 0 picks a free one (default 0). The port is printed on stdout")
    p.add_argument("--port-file", help="also write the port to this file (atomically)")
    p.add_argument("--hostname", default="localhost",
                   help="name in the greeting and EHLO reply (default localhost; no DNS lookup)")
    p.add_argument("--tls", choices=("starttls", "implicit", "none"), default="starttls",
                   help="starttls: STARTTLS required before MAIL/AUTH (default); "
                   "implicit: TLS from the first byte (smtps); "
                   "none: no TLS offered (to test that a client refuses to go on)")
    p.add_argument("--cert", help="server certificate chain, PEM (required unless --tls none)")
    p.add_argument("--key", help="server private key, PEM (required unless --tls none)")
    p.add_argument("--user", required=True, help="the one user AUTH accepts")
    p.add_argument("--password", help="that user's password")
    p.add_argument("--password-file", help="read the password from the first line of this file")
    p.add_argument("--maildir", required=True,
                   help="Maildir to deliver into (tmp/ new/ cur/ are created)")
    p.add_argument("--log", required=True,
                   help="append one JSON line per accepted message: "
                   "mail_from, rcpt_tos, data_len, message_id, subject, file")
    p.add_argument("--command-log",
                   help="append every command line received: '<conn> <line>' "
                   "(AUTH arguments redacted; controls shown as \\xNN)")
    p.add_argument("--rcpt-code", type=int,
                   help="answer every RCPT with this code (e.g. 451 or 550)")
    p.add_argument("--fail-rcpt", action="append", default=[], metavar="ADDR=CODE",
                   help="answer RCPT for ADDR with CODE; repeatable")
    p.add_argument("--data-code", type=int,
                   help="answer every DATA (after the message) with this code")
    p.add_argument("--fail-data", action="append", default=[], metavar="ADDR=CODE",
                   help="answer DATA with CODE when ADDR is among the recipients; repeatable")
    p.add_argument("--parent-pid", type=int,
                   help="exit when this process is gone (so a crashed test leaves nothing behind)")
    p.add_argument("--max-size", type=int, default=10 * 1024 * 1024,
                   help="largest message accepted, bytes (default 10 MiB)")
    a = p.parse_args(argv)
    if a.host not in ("127.0.0.1", "::1", "localhost"):
        p.error("--host must be a loopback address")
    if a.tls != "none" and (not a.cert or not a.key):
        p.error("--cert and --key are required with --tls %s" % a.tls)
    if a.password_file:
        with open(a.password_file, encoding="utf-8") as f:
            a.password = f.readline().rstrip("\r\n")
    if a.password is None:
        p.error("--password or --password-file is required")
    for opt in ("fail_rcpt", "fail_data"):
        table = {}
        for item in getattr(a, opt):
            addr, sep, code = item.rpartition("=")
            if not sep or not addr or not code.isdigit() or not 400 <= int(code) <= 599:
                p.error("--%s wants ADDR=CODE with CODE 400..599, not %r"
                        % (opt.replace("_", "-"), item))
            table[addr.lower()] = int(code)
        setattr(a, opt, table)
    for opt in ("rcpt_code", "data_code"):
        code = getattr(a, opt)
        if code is not None and not 400 <= code <= 599:
            p.error("--%s must be 400..599" % opt.replace("_", "-"))
    return a


def reply_for(code):
    """A plausible reply text with an enhanced status code."""
    if 400 <= code < 500:
        return "%d 4.3.0 Temporary failure (test server)" % code
    return "%d 5.7.1 Rejected (test server)" % code


def escape_line(line):
    out = []
    for b in line:
        if b < 0x20 or b == 0x7F or b == 0x5C:
            out.append("\\x%02x" % b)
        elif b < 0x80:
            out.append(chr(b))
        else:
            out.append("\\x%02x" % b)
    return "".join(out)


class CommandLog:
    def __init__(self, path):
        self.f = open(path, "a", encoding="ascii", buffering=1) if path else None
        self.conns = 0

    def next_conn(self):
        self.conns += 1
        return self.conns

    def write(self, conn, text):
        if self.f:
            self.f.write("%d %s\n" % (conn, text))
            self.f.flush()


class LoggingSMTP(SMTP):
    """SMTP that writes each command line to the command log.

    Commands are read with readuntil() (default separator); DATA lines use
    readuntil(b"\\r\\n") and AUTH continuations readline() (which calls
    readuntil() itself, hence the flag), so only command lines are logged
    and no credentials are."""

    cmdlog = None

    def _client_connected_cb(self, reader, writer):
        super()._client_connected_cb(reader, writer)
        conn = self.cmdlog.next_conn()
        peer = writer.get_extra_info("peername")
        self.cmdlog.write(conn, "CONNECT %s:%s" % (peer[0], peer[1]) if peer else "CONNECT")
        original = reader.readuntil
        original_readline = reader.readline
        cmdlog = self.cmdlog
        in_auth = [False]

        async def logged(separator=b"\n"):
            line = await original(separator)
            if separator == b"\n" and not in_auth[0]:
                text = line.rstrip(b"\r\n")
                if text[:5].upper() == b"AUTH ":
                    words = text.split(b" ")
                    if len(words) > 2:
                        text = b" ".join(words[:2]) + b" [redacted]"
                # A bare CR inside a line shows up as \x0d: that is the injection.
                cmdlog.write(conn, escape_line(text))
            return line

        async def auth_readline():
            # challenge_auth() reads the client's credentials with readline().
            in_auth[0] = True
            try:
                return await original_readline()
            finally:
                in_auth[0] = False

        reader.readuntil = logged
        reader.readline = auth_readline


class Handler:
    def __init__(self, args):
        self.args = args
        self.seq = 0
        for sub in ("tmp", "new", "cur"):
            os.makedirs(os.path.join(args.maildir, sub), exist_ok=True)
        self.log = open(args.log, "a", encoding="utf-8", buffering=1)

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        code = self.args.fail_rcpt.get(address.lower(), self.args.rcpt_code)
        if code is not None:
            return reply_for(code)
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server, session, envelope):
        for rcpt in envelope.rcpt_tos:
            code = self.args.fail_data.get(rcpt.lower())
            if code is not None:
                return reply_for(code)
        if self.args.data_code is not None:
            return reply_for(self.args.data_code)
        data = envelope.original_content
        self.seq += 1
        name = "%d.%d_%d.%s" % (int(time.time()), os.getpid(), self.seq,
                                self.args.hostname)
        tmp = os.path.join(self.args.maildir, "tmp", name)
        new = os.path.join(self.args.maildir, "new", name)
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.rename(tmp, new)
        headers = email.parser.BytesHeaderParser(policy=email.policy.default).parsebytes(data)
        try:
            subject = str(headers.get("Subject", ""))
        except Exception:  # a header the library cannot decode still gets logged
            subject = None
        message_id = headers.get("Message-ID")
        entry = {
            "mail_from": envelope.mail_from,
            "rcpt_tos": list(envelope.rcpt_tos),
            "data_len": len(data),
            "message_id": str(message_id).strip() if message_id is not None else None,
            "subject": subject,
            "file": new,
            # The client's port: messages that share it came over one connection.
            "peer_port": session.peer[1] if session.peer else None,
        }
        # The file exists before its line: a reader that sees the line finds the file.
        self.log.write(json.dumps(entry) + "\n")
        self.log.flush()
        return "250 2.0.0 OK queued as %s" % name


def make_authenticator(args):
    user = args.user.encode("utf-8")
    password = args.password.encode("utf-8")

    def authenticator(server, session, envelope, mechanism, auth_data):
        ok = (mechanism in ("PLAIN", "LOGIN") and isinstance(auth_data, LoginPassword)
              and hmac.compare_digest(auth_data.login, user)
              and hmac.compare_digest(auth_data.password, password))
        # handled=False: aiosmtpd then answers 535 itself (the default,
        # handled=True, would leave the client waiting for a reply).
        return AuthResult(success=ok, handled=False)

    return authenticator


async def watch_parent(pid, stop):
    while not stop.done():
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            stop.set_result(None)
            return
        except PermissionError:
            pass
        if os.getppid() == 1 and pid != 1:
            stop.set_result(None)
            return
        await asyncio.sleep(0.5)


async def serve(args):
    loop = asyncio.get_running_loop()
    ctx = None
    if args.tls != "none":
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(args.cert, args.key)
    handler = Handler(args)
    LoggingSMTP.cmdlog = CommandLog(args.command_log)
    authenticator = make_authenticator(args)

    def factory():
        kw = dict(hostname=args.hostname, authenticator=authenticator,
                  auth_required=True, data_size_limit=args.max_size, loop=loop)
        if args.tls == "starttls":
            kw.update(tls_context=ctx, require_starttls=True, auth_require_tls=True)
        elif args.tls == "implicit":
            # The TLS is below the protocol: aiosmtpd sees a secure transport.
            kw.update(auth_require_tls=False)
        else:
            kw.update(auth_require_tls=False)
        return LoggingSMTP(handler, **kw)

    family = socket.AF_INET6 if ":" in args.host else socket.AF_INET
    server = await loop.create_server(
        factory, host=args.host, port=args.port, family=family,
        ssl=ctx if args.tls == "implicit" else None, reuse_address=True)
    port = server.sockets[0].getsockname()[1]
    if args.port_file:
        tmp = args.port_file + ".tmp"
        with open(tmp, "w") as f:
            f.write("%d\n" % port)
        os.rename(tmp, args.port_file)
    print(port, flush=True)

    stop = loop.create_future()
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        loop.add_signal_handler(sig, lambda: stop.done() or stop.set_result(None))
    if args.parent_pid:
        loop.create_task(watch_parent(args.parent_pid, stop))
    await stop
    server.close()
    await server.wait_closed()


def main(argv):
    args = parse_args(argv)
    # aiosmtpd warns about AUTH without STARTTLS; with implicit TLS (or the
    # deliberate --tls none) that is what we want.
    warnings.simplefilter("ignore")
    logging.getLogger("mail.log").setLevel(logging.ERROR)
    try:
        asyncio.run(serve(args))
    except OSError as e:
        print("smtp_server.py: %s" % e, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
