#!/usr/bin/python3
"""genmailbox.py — a seller's mailbox for the fault-injection tests: N messages, K of them Amazon IP notices with distinct complaint ids, each followed by its correspondence.

Every notice (built from tests/samples s01 or s02) gets its own complaint id,
ASINs and rights owner; after it come the seller's message to that owner (Sent,
from s15) and the owner's reply (INBOX, from s16, In-Reply-To the seller's
message).  The rest is ordinary mail: partner newsletters of 3-30 KB (a few
with a PDF up to 200 KB) and Amazon's order and payout notifications.
Deterministic for a given seed.

Writes OUTDIR/NNNNN.eml in delivery order and OUTDIR/manifest.tsv with one
line per message: seq, folder (INBOX or Sent), role (notice, seller, owner,
noise), case number, complaint id, Message-ID.

usage: genmailbox.py OUTDIR [--messages 1000] [--notices 100] [--first-case 0]
                      [--date keep|now|EPOCH] [--seed 1] [--samples tests/samples]
  --date now: notices and their correspondence are dated now (deadlines in the
  future, so reminder thresholds are still ahead); keep: the samples' 2024 dates.
"""
import argparse
import base64
import email.utils
import os
import random
import sys
import time


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("outdir")
    p.add_argument("--messages", type=int, default=1000)
    p.add_argument("--notices", type=int, default=100)
    p.add_argument("--first-case", type=int, default=0,
                   help="number of the first case: ids stay distinct across calls")
    p.add_argument("--date", default="keep")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--samples", default=os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                                      "samples"))
    a = p.parse_args(argv)
    if a.notices * 3 > a.messages:
        p.error("--messages must be at least 3 x --notices (notice, seller, owner)")
    return a


def read(samples, name):
    with open(os.path.join(samples, name), "rb") as f:
        return f.read()


def set_header(raw, name, value):
    """Replaces the first top-level header `name` (unfolded, one line in the samples)."""
    eol = b"\r\n" if b"\r\n" in raw[:400] else b"\n"
    head, sep, body = raw.partition(eol + eol)
    lines = head.split(eol)
    key = name.encode().lower() + b":"
    for i, line in enumerate(lines):
        if line.lower().startswith(key):
            lines[i] = name.encode() + b": " + value.encode()
            break
    else:
        lines.append(name.encode() + b": " + value.encode())
    return eol.join(lines) + sep + body


class Case:
    def __init__(self, n):
        self.n = n
        self.complaint = str(21000000000 + n * 104729)
        self.asins = ("B0T%07d" % n, "B0U%07d" % n)
        self.domain = "owner%05d.example.com" % n
        self.owner = "legal@" + self.domain
        self.notice_id = "<torture-notice-%d@email.amazonses.com>" % n
        self.seller_id = "<torture-seller-%d@shop.example>" % n
        self.reply_id = "<torture-reply-%d@%s>" % (n, self.domain)


def notice(samples, c, when):
    if c.n % 2 == 0:
        raw = read(samples, "s01_us_trademark_inauthentic_2asins.eml")
        raw = raw.replace(b"12904418236", c.complaint.encode())
        raw = raw.replace(b"B0CR3M8W5T", c.asins[0].encode())
        raw = raw.replace(b"B0CR3P2KXD", c.asins[1].encode())
        raw = raw.replace(b"legal@halvorsentools.example.com", c.owner.encode())
        raw = raw.replace(b"Halvorsen Tool Co.", b"Owner %d Tool Co." % c.n)
    else:
        raw = read(samples, "s02_us_design_patent.eml")
        raw = raw.replace(b"15402917763", c.complaint.encode())
        raw = raw.replace(b"B0C6WK2L8Q", c.asins[0].encode())
        raw = raw.replace(b"designs@orrinpike.test", c.owner.encode())
        raw = raw.replace(b"Orrin & Pike Housewares", b"Owner %d Housewares" % c.n)
    raw = set_header(raw, "Message-ID", c.notice_id)
    if when is not None:
        raw = set_header(raw, "Date", email.utils.formatdate(when, usegmt=True))
    return raw


def correspondence(samples, c, name, when):
    raw = read(samples, name)
    raw = raw.replace(b"12904418236", c.complaint.encode())
    raw = raw.replace(b"B0CR3M8W5T", c.asins[0].encode())
    raw = raw.replace(b"B0CR3P2KXD", c.asins[1].encode())
    raw = raw.replace(b"legal@halvorsentools.example.com", c.owner.encode())
    raw = raw.replace(b"halvorsentools.example.com", c.domain.encode())
    raw = raw.replace(b"Halvorsen Tool Co.", b"Owner %d Tool Co." % c.n)
    raw = raw.replace(b"<3e7f1a90-2b6c-4d8e-a1f0-9c2d4e6b8a13@shop.example>", c.seller_id.encode())
    if name.startswith("s16"):
        raw = set_header(raw, "Message-ID", c.reply_id)
    else:
        raw = set_header(raw, "Message-ID", c.seller_id)
    if when is not None:
        raw = set_header(raw, "Date", email.utils.formatdate(when, usegmt=True))
    return raw


WORDS = ("order shipment invoice customer review listing price stock warehouse return refund "
         "label carrier update report weekly account balance promotion coupon supplier "
         "container pallet freight forecast").split()


def noise(rnd, samples, i, amazon):
    mid = "<torture-noise-%d@partner.example>" % i
    if i % 10 == 3:
        # Amazon's own everyday mail: authenticated, but no notice.
        raw = read(samples, amazon[i % len(amazon)])
        return set_header(raw, "Message-ID", mid.replace("partner.example", "amazonses.com")), \
            mid.replace("partner.example", "amazonses.com")
    size = int(min(rnd.lognormvariate(8.9, 0.7), 30000))
    text = " ".join(rnd.choice(WORDS) for _ in range(60)) + "\n"
    body = (text * (1 + size // len(text)))[:size].replace("\n", "\r\n")
    head = ("Return-Path: <news%d@shop-partner%d.example>\r\n"
            "Received: from mx%d.partner.example by mx.seller-mail.example\r\n"
            "Authentication-Results: mx.seller-mail.example; dkim=pass "
            "header.d=shop-partner%d.example; spf=pass\r\n"
            "Date: Mon, 0%d Sep 2024 1%d:00:00 +0000\r\n"
            "From: \"Partner %d\" <news%d@shop-partner%d.example>\r\n"
            "To: ops@shop.example\r\nSubject: %s %s #%d\r\n"
            "Message-ID: %s\r\nMIME-Version: 1.0\r\n") % (
        i % 97, i % 13, i % 7, i % 13, 1 + i % 9, i % 10, i % 13, i % 97, i % 13,
        rnd.choice(WORDS), rnd.choice(WORDS), i, mid)
    if i % 40 != 11:
        return (head + "Content-Type: text/plain; charset=utf-8\r\n\r\n" + body).encode(), mid
    blob = base64.encodebytes(rnd.randbytes(rnd.randint(20000, 150000))).decode()
    return (head + 'Content-Type: multipart/mixed; boundary="b"\r\n\r\n--b\r\n'
            "Content-Type: text/plain; charset=utf-8\r\n\r\n" + body +
            '\r\n--b\r\nContent-Type: application/pdf; name="invoice.pdf"\r\n'
            "Content-Transfer-Encoding: base64\r\n\r\n" +
            blob.replace("\n", "\r\n") + "--b--\r\n").encode(), mid


def main(argv):
    a = parse_args(argv)
    rnd = random.Random(a.seed * 1000003 + a.first_case)
    now = int(time.time())
    when = None if a.date == "keep" else (now if a.date == "now" else int(a.date))
    amazon = ["s21_uk_sold_dispatch_now.eml", "s22_us_payout.eml"]
    os.makedirs(a.outdir, exist_ok=True)

    # Where each case's three messages go: notice, then the seller, then the owner.
    n = a.messages
    slots = [None] * n
    free = list(range(n))
    for k in range(a.notices):
        c = Case(a.first_case + k)
        while True:
            p0 = rnd.randrange(0, max(1, n - 2))
            p1 = min(n - 2, p0 + rnd.randint(1, 40))
            p2 = min(n - 1, p1 + rnd.randint(1, 40))
            if p0 < p1 < p2 and slots[p0] is None and slots[p1] is None and slots[p2] is None:
                break
        slots[p0], slots[p1], slots[p2] = (c, "notice"), (c, "seller"), (c, "owner")
    del free

    rows = []
    for seq in range(n):
        if slots[seq] is None:
            raw, mid = noise(rnd, a.samples, a.first_case * 100000 + seq, amazon)
            folder, role, case, cid = "INBOX", "noise", "-", "-"
        else:
            c, role = slots[seq]
            case, cid = str(c.n), c.complaint
            if role == "notice":
                raw, mid, folder = notice(a.samples, c, when), c.notice_id, "INBOX"
            elif role == "seller":
                raw = correspondence(a.samples, c, "s15_sent_to_rights_owner.eml",
                                     None if when is None else when + 60)
                mid, folder = c.seller_id, "Sent"
            else:
                raw = correspondence(a.samples, c, "s16_ro_reply.eml",
                                     None if when is None else when + 120)
                mid, folder = c.reply_id, "INBOX"
        with open(os.path.join(a.outdir, "%05d.eml" % seq), "wb") as f:
            f.write(raw)
        rows.append((seq, folder, role, case, cid, mid))
    with open(os.path.join(a.outdir, "manifest.tsv"), "w", encoding="ascii") as f:
        f.write("seq\tfolder\trole\tcase\tcomplaint_id\tmessage_id\n")
        for r in rows:
            f.write("\t".join(str(x) for x in r) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
