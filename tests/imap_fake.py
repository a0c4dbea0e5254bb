#!/usr/bin/python3
# imap_fake.py — a scripted IMAP server for the faults a real one will not produce.
#
# Modes (--mode):
#   permflags   greeting "* OK [PERMANENTFLAGS (\\x)] x": crashes libetpan 1.9.4
#   literal     a polite server (header FETCH answered) until a body FETCH, then
#               hangs up inside the literal
#   stray       answers every header FETCH with UIDs 1, 2, 3 and 99, whatever was
#               asked: the client must pass on only the UIDs it asked for
#   nostarttls  plain text, never offers STARTTLS, accepts any LOGIN (logged)
#   inject      offers STARTTLS and answers it with "A OK begin TLS\r\n* OK injected\r\n"
#               in one packet (CVE-2020-15953)
# --tls implicit wraps every connection in TLS with --cert/--key.  Every line the
# client sends is appended to --log, so tests can prove what was (not) sent.
# Connections are served one after the other until the process is killed.
import argparse
import os
import socket
import ssl
import sys


def log(path, text):
    with open(path, "a", encoding="utf-8", errors="backslashreplace") as f:
        f.write(text + "\n")


def readline(conn, buf):
    while b"\r\n" not in buf[0]:
        data = conn.recv(4096)
        if not data:
            return None
        buf[0] += data
    line, buf[0] = buf[0].split(b"\r\n", 1)
    return line.decode("latin-1")


def serve(conn, mode, logpath):
    buf = [b""]
    if mode == "permflags":
        conn.sendall(b"* OK [PERMANENTFLAGS (\\\\x)] x\r\n")
    elif mode == "nostarttls":
        conn.sendall(b"* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN LOGIN] fake ready\r\n")
    elif mode == "inject":
        conn.sendall(b"* OK [CAPABILITY IMAP4rev1 STARTTLS LOGINDISABLED] fake ready\r\n")
    else:
        conn.sendall(b"* OK [CAPABILITY IMAP4rev1 IDLE AUTH=PLAIN AUTH=XOAUTH2] fake ready\r\n")
    while True:
        line = readline(conn, buf)
        if line is None:
            log(logpath, "EOF")
            return
        log(logpath, "C: " + line)
        parts = line.split(" ", 2)
        tag = parts[0]
        cmd = parts[1].upper() if len(parts) > 1 else ""
        if cmd == "UID" and len(parts) > 2:
            cmd = "UID " + parts[2].split(" ", 1)[0].upper()
        if cmd == "CAPABILITY":
            caps = {"nostarttls": "IMAP4rev1 AUTH=PLAIN",
                    "inject": "IMAP4rev1 STARTTLS LOGINDISABLED"}.get(mode, "IMAP4rev1 IDLE AUTH=PLAIN AUTH=XOAUTH2")
            conn.sendall(("* CAPABILITY %s\r\n%s OK done\r\n" % (caps, tag)).encode())
        elif cmd == "STARTTLS" and mode == "inject":
            conn.sendall(("%s OK begin TLS\r\n* OK injected\r\n" % tag).encode())
        elif cmd == "EXAMINE":
            conn.sendall(("* 1 EXISTS\r\n* OK [UIDVALIDITY 7] ok\r\n* OK [UIDNEXT 2] ok\r\n"
                          "%s OK [READ-ONLY] done\r\n" % tag).encode())
        elif cmd == "UID FETCH" and mode == "literal" and "HEADER.FIELDS" in line:
            hdr = b"Subject: fake\r\n\r\n"
            conn.sendall(b"* 1 FETCH (UID 1 RFC822.SIZE 42 BODY[HEADER.FIELDS (Subject)] {%d}\r\n"
                         % len(hdr) + hdr + b")\r\n" + tag.encode() + b" OK done\r\n")
        elif cmd == "UID FETCH" and mode == "stray" and "HEADER.FIELDS" in line:
            out = b""
            for uid in (1, 2, 3, 99):
                hdr = b"Subject: stray %d\r\n\r\n" % uid
                out += (b"* %d FETCH (UID %d RFC822.SIZE 42 BODY[HEADER.FIELDS (Subject)] {%d}\r\n"
                        % (uid if uid < 4 else 4, uid, len(hdr)) + hdr + b")\r\n")
            conn.sendall(out + tag.encode() + b" OK done\r\n")
        elif cmd == "UID FETCH" and mode == "literal":
            conn.sendall(b"* 1 FETCH (UID 1 BODY[] {100}\r\n0123456789")
            log(logpath, "HANGUP")
            return
        elif cmd == "LOGOUT":
            conn.sendall(("* BYE bye\r\n%s OK done\r\n" % tag).encode())
            return
        else:
            conn.sendall(("%s OK done\r\n" % tag).encode())


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--mode", required=True,
                    choices=["permflags", "literal", "nostarttls", "inject", "stray"])
    ap.add_argument("--tls", choices=["implicit", "none"], default="none")
    ap.add_argument("--cert")
    ap.add_argument("--key")
    ap.add_argument("--log", required=True)
    ap.add_argument("--port-file", required=True)
    args = ap.parse_args()

    ctx = None
    if args.tls == "implicit":
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(args.cert, args.key)
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", 0))
    srv.listen(8)
    tmp = args.port_file + ".tmp"
    with open(tmp, "w") as f:
        f.write("%d\n" % srv.getsockname()[1])
    os.rename(tmp, args.port_file)
    while True:
        conn, _ = srv.accept()
        conn.settimeout(30)
        log(args.log, "CONNECT")
        try:
            if ctx is not None:
                conn = ctx.wrap_socket(conn, server_side=True)
            serve(conn, args.mode, args.log)
        except (OSError, ssl.SSLError) as e:
            log(args.log, "ERROR " + type(e).__name__)
        finally:
            try:
                conn.close()
            except OSError:
                pass
            log(args.log, "CLOSED")


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        sys.exit(0)
