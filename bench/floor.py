#!/usr/bin/python3
"""floor.py — the simplest client doing the daemon's first-scan header fetch: the floor.

usage: floor.py PORT CAFILE USER PASSFILE   (prints: messages bytes)

bench/run.sh times it from process start to exit, as it times ipcased: the
interpreter's start counts as the daemon's own start does.
"""
import imaplib, ssl, sys

port, cafile, user, passfile = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
fields = "From Reply-To To Cc Subject In-Reply-To References"	# daemon/imap.c imap_header_fields
ctx = ssl.create_default_context(cafile=cafile)
imap = imaplib.IMAP4_SSL("127.0.0.1", port, ssl_context=ctx)
imap.login(user, open(passfile).read().strip())
imap.select("INBOX", readonly=True)
received = 0
typ, data = imap.uid("FETCH", "1:*", f"(UID RFC822.SIZE BODY.PEEK[HEADER.FIELDS ({fields})])")
n = 0
for item in data:
    if isinstance(item, tuple):
        n += 1
        received += len(item[0]) + len(item[1])
    elif item:
        received += len(item)
imap.logout()
print(n, received)
