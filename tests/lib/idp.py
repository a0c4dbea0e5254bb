#!/usr/bin/python3
"""idp.py — a small OAuth 2.0 identity provider on 127.0.0.1 for the XOAUTH2 tests.

Two endpoints, both POST with a form-urlencoded body:

  /token       for ipcased: grant_type=refresh_token&refresh_token=R&client_id=C.
               A known refresh token gets 200 {"access_token", "token_type",
               "expires_in", "refresh_token": a new, rotated value}; the old one
               stops working (strict rotation).  An unknown, already rotated or
               revoked one gets 400 {"error": "invalid_grant"}.
  /introspect  for Dovecot's oauth2 passdb (introspection_mode = post):
               token=T.  200 {"active": true, "username": USER} for an access
               token issued here and not revoked, 200 {"active": false}
               otherwise (Dovecot treats 4xx/5xx as "IdP trouble", not "bad
               token").

The grant is revoked when the --revoke-file exists (the test creates it):
from then on every refresh token is refused and every access token inactive.
Each request is one JSON line in --log.  Tokens appear there only as
fingerprints, the first 12 hex digits of their SHA-256, so the test can tell
which token was used without the log holding any.

Run with /usr/bin/python3.  The port the kernel chose is written to --port-file
once the server accepts connections.
"""

import argparse
import hashlib
import json
import os
import secrets
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def fingerprint(token):
    return hashlib.sha256(token.encode("utf-8", "surrogateescape")).hexdigest()[:12]


class State:
    def __init__(self, args):
        self.lock = threading.Lock()
        self.args = args
        with open(args.refresh_file, encoding="utf-8") as f:
            self.refresh = {f.readline().strip()}
        self.access = {}            # token -> expiry (epoch seconds)
        self.issued = 0

    def revoked(self):
        return os.path.exists(self.args.revoke_file)

    def log(self, entry):
        entry["t"] = round(time.time(), 3)
        with self.lock, open(self.args.log, "a", encoding="utf-8") as f:
            f.write(json.dumps(entry, sort_keys=True) + "\n")


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"   # Dovecot keeps its connection alive
    server_version = "ipcased-test-idp"

    def log_message(self, fmt, *args):
        pass                        # our own JSON log instead of stderr lines

    def reply(self, code, obj):
        body = json.dumps(obj).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(body)

    def form(self):
        n = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(n).decode("utf-8", "replace") if n > 0 else ""
        return {k: v[0] for k, v in urllib.parse.parse_qs(raw, keep_blank_values=True).items()}

    def do_GET(self):
        st = self.server.state
        st.log({"path": self.path.split("?")[0], "method": "GET", "code": 405})
        self.reply(405, {"error": "method_not_allowed"})

    def do_POST(self):
        st = self.server.state
        path = self.path.split("?")[0]
        f = self.form()
        if path == "/token":
            self.token(st, f)
        elif path == "/introspect":
            self.introspect(st, f)
        else:
            st.log({"path": path, "code": 404})
            self.reply(404, {"error": "not_found"})

    def token(self, st, f):
        entry = {"path": "/token", "grant_type": f.get("grant_type", ""),
                 "client_id": f.get("client_id", ""),
                 "refresh_fp": fingerprint(f.get("refresh_token", ""))}
        with st.lock:
            if f.get("grant_type") != "refresh_token":
                code, obj = 400, {"error": "unsupported_grant_type"}
            elif f.get("client_id") != st.args.client_id:
                code, obj = 401, {"error": "invalid_client"}
            elif st.revoked():
                code, obj = 400, {"error": "invalid_grant",
                                  "error_description": "the grant was revoked"}
            elif f.get("refresh_token") not in st.refresh:
                code, obj = 400, {"error": "invalid_grant",
                                  "error_description": "unknown or rotated refresh token"}
            else:
                st.issued += 1
                access = "at%d-%s" % (st.issued, secrets.token_urlsafe(18))
                rotated = "rt%d-%s" % (st.issued, secrets.token_urlsafe(24))
                st.access[access] = time.time() + st.args.expires_in
                st.refresh = {rotated}
                code, obj = 200, {"access_token": access, "token_type": "Bearer",
                                  "expires_in": st.args.expires_in, "refresh_token": rotated,
                                  "scope": "https://mail.example/imap"}
                entry["access_fp"] = fingerprint(access)
                entry["rotated_fp"] = fingerprint(rotated)
        entry["code"] = code
        entry["error"] = obj.get("error")
        st.log(entry)
        self.reply(code, obj)

    def introspect(self, st, f):
        token = f.get("token", "")
        with st.lock:
            exp = st.access.get(token)
            active = exp is not None and exp > time.time() and not st.revoked()
        st.log({"path": "/introspect", "token_fp": fingerprint(token), "active": active,
                "code": 200})
        if active:
            self.reply(200, {"active": True, "username": st.args.user,
                             "token_type": "Bearer", "exp": int(exp)})
        else:
            self.reply(200, {"active": False})


def watch_parent(pid):
    while True:
        time.sleep(1)
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            os._exit(0)
        except PermissionError:
            pass


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--port-file", required=True)
    ap.add_argument("--log", required=True, help="one JSON line per request")
    ap.add_argument("--refresh-file", required=True,
                    help="first line: the refresh token the seller's grant starts with")
    ap.add_argument("--revoke-file", required=True,
                    help="when this file exists the grant is revoked")
    ap.add_argument("--client-id", default="ipcased-test")
    ap.add_argument("--user", default="seller", help="username introspection answers with")
    ap.add_argument("--expires-in", type=int, default=3600)
    ap.add_argument("--parent-pid", type=int, help="exit when this process is gone")
    args = ap.parse_args()

    srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    srv.daemon_threads = True
    srv.state = State(args)
    tmp = args.port_file + ".tmp"
    with open(tmp, "w") as f:
        f.write("%d\n" % srv.server_address[1])
    os.rename(tmp, args.port_file)
    if args.parent_pid:
        threading.Thread(target=watch_parent, args=(args.parent_pid,), daemon=True).start()
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
