#!/usr/bin/python3
# notify_listen.py — stands in for systemd's $NOTIFY_SOCKET in tests: records every sd_notify datagram with its time and sender.
#
#   notify_listen.py --socket PATH --out FILE [--parent-pid PID]
#
# Binds an AF_UNIX SOCK_DGRAM socket at PATH (removed first if stale) and
# appends one line per field of each datagram to FILE, flushed at once:
#
#   SEQ TIME PID FIELD
#
# SEQ numbers the datagrams (fields sent together share it), TIME is the
# wall clock (seconds since the epoch, microseconds, like `date +%s.%N`), PID
# is the sender's pid from SCM_CREDENTIALS (systemd's NotifyAccess=main drops
# datagrams from other pids, so tests check it), FIELD is "READY=1",
# "STATUS=..." and so on.  A newline inside a field cannot occur (it ends the
# field in the sd_notify protocol).  The socket is ready when FILE exists.
# Exits on SIGTERM, or when --parent-pid is gone (a test shell killed
# without running its trap leaves nothing behind).
import argparse
import os
import select
import signal
import socket
import struct
import sys
import time


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--socket", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--parent-pid", type=int, default=0)
    args = ap.parse_args()

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        os.unlink(args.socket)
    except FileNotFoundError:
        pass
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(args.socket)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
    ucred = struct.Struct("iII")
    out = open(args.out, "a", buffering=1, encoding="utf-8", errors="backslashreplace")
    seq = 0
    try:
        while True:
            ready, _, _ = select.select([sock], [], [], 1.0)
            if args.parent_pid and not os.path.exists("/proc/%d" % args.parent_pid):
                break
            if not ready:
                continue
            data, anc, _, _ = sock.recvmsg(65536, socket.CMSG_SPACE(ucred.size))
            when = time.time()
            pid = 0
            for level, kind, payload in anc:
                if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS:
                    pid = ucred.unpack(payload[:ucred.size])[0]
            seq += 1
            text = data.decode("utf-8", errors="backslashreplace")
            for field in text.split("\n"):
                if field:
                    out.write("%d %.6f %d %s\n" % (seq, when, pid, field))
    finally:
        out.close()
        sock.close()
        try:
            os.unlink(args.socket)
        except OSError:
            pass


if __name__ == "__main__":
    main()
