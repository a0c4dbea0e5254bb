#!/usr/bin/python3
"""genmail.py — fills a Maildir with N real-shaped messages for `make bench`.

Sizes follow a long tail like a seller's mailbox (mostly 3-30 KB, some
attachments up to 2 MB, mean about 40 KB); one message in every ~150 is an
Amazon IP notice built from the test samples with a fresh complaint id, so
the daemon has real work among the noise.  Deterministic for a given seed.

usage: genmail.py MAILDIR FIRST COUNT SAMPLES_DIR
"""
import base64, os, random, sys

maildir, first, count, samples = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
rnd = random.Random(first)
notices = []
for name in sorted(os.listdir(samples)):
    if name.endswith(".eml") and ("notice" in name or "_us_" in name or "copyright" in name):
        with open(os.path.join(samples, name), "rb") as f:
            notices.append(f.read())
words = ("order shipment invoice customer review listing price stock warehouse "
         "return refund label carrier update report weekly account balance").split()
os.makedirs(os.path.join(maildir, "cur"), exist_ok=True)
os.makedirs(os.path.join(maildir, "new"), exist_ok=True)
os.makedirs(os.path.join(maildir, "tmp"), exist_ok=True)


def ordinary(i):
    size = int(min(rnd.lognormvariate(9.3, 1.1), 2_000_000))
    text = " ".join(rnd.choice(words) for _ in range(60)) + "\n"
    body = (text * (1 + min(size, 30000) // len(text)))[: min(size, 30000)]
    head = (f"Return-Path: <news{i % 97}@shop-partner{i % 13}.example>\r\n"
            f"Received: from mx{i % 7}.partner.example by mx.seller-mail.example\r\n"
            f"Authentication-Results: mx.seller-mail.example; dkim=pass header.d=partner.example; spf=pass\r\n"
            f"Date: Mon, 0{1 + i % 9} Sep 2024 1{i % 10}:00:00 +0000\r\n"
            f"From: \"Partner {i % 13}\" <news{i % 97}@shop-partner{i % 13}.example>\r\n"
            f"To: ops@shop.example\r\nSubject: {rnd.choice(words)} {rnd.choice(words)} #{i}\r\n"
            f"Message-ID: <bench.{i}@partner.example>\r\nMIME-Version: 1.0\r\n")
    if size <= 30000:
        return (head + "Content-Type: text/plain; charset=utf-8\r\n\r\n" + body.replace("\n", "\r\n")).encode()
    blob = base64.encodebytes(rnd.randbytes(size * 3 // 4)).decode().replace("\n", "\r\n")
    return (head + 'Content-Type: multipart/mixed; boundary="b"\r\n\r\n--b\r\n'
            "Content-Type: text/plain; charset=utf-8\r\n\r\n" + body.replace("\n", "\r\n") +
            '\r\n--b\r\nContent-Type: application/pdf; name="invoice.pdf"\r\n'
            "Content-Transfer-Encoding: base64\r\n\r\n" + blob + "--b--\r\n").encode()


def notice(i):
    raw = rnd.choice(notices)
    cid = str(10_000_000_000 + i * 7919)
    for old in (b"12904418236", b"15402917763", b"13877120954", b"11563309481",
                b"14408812576", b"12660394105", b"16340077215", b"10084563327"):
        raw = raw.replace(old, cid.encode())
    return raw.replace(b"Message-ID: <", b"Message-ID: <bench" + str(i).encode() + b".", 1)


for i in range(first, first + count):
    data = notice(i) if notices and i % 150 == 7 else ordinary(i)
    name = f"{1700000000 + i}.M{i}P1.bench,S={len(data)}:2,S"
    with open(os.path.join(maildir, "cur", name), "wb") as f:
        f.write(data)
