#!/usr/bin/python3
"""check_cases.py — assertions of the end-to-end tests on `ipcase list --all --json` and the mail the test SMTP server received.

Prints one "ok - what" / "not ok - what" line per assertion (the calling script
numbers them) and "# ..." lines with details of a failure.  Exit status 1 if any
assertion failed.

  check_cases.py cases MANIFEST CASES.json
  check_cases.py smtp MANIFEST CASES.json MAILDIR ENVELOPES.jsonl SELLER_ADDR
  check_cases.py same A.json B.json
"""

import csv
import email
import email.policy
import json
import os
import re
import sys
from tapcheck import report, status

OPENING = ("ip_notice", "apex", "account_warning", "report_confirmation")
FOLLOW_UP = ("retraction", "reinstatement", "correspondence", "appeal_decision")
FIELDS = ("kind", "marketplace", "infringement_type", "complaint_id", "asins",
          "rights_owner_name", "rights_owner_email", "deadline_days")


def dash(v):
    return None if v in ("-", "") else v


def read_context(path):
    out = {}
    try:
        with open(path, encoding="utf-8") as f:
            for line in f:
                if line.startswith("#") or not line.strip():
                    continue
                name, field = line.rstrip("\n").split("\t")[:2]
                out.setdefault(name, set()).add(field)
    except FileNotFoundError:
        pass
    return out


CONTEXT = {}


def read_manifest(path):
    with open(path, encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f, delimiter="\t"))


def ids_of(row):
    cid = dash(row["complaint_id"])
    return [] if cid is None else [x.strip() for x in cid.split(",") if x.strip()]


def expected_fields(row):
    asins = dash(row["asins"])
    days = dash(row["deadline_days"])
    return {
        "kind": row["kind"],
        "marketplace": dash(row["marketplace"]),
        "infringement_type": dash(row["infringement_type"]),
        "complaint_id": dash(row["complaint_id"]),
        "asins": sorted(asins.split(",")) if asins else [],
        "rights_owner_name": dash(row["rights_owner_name"]),
        "rights_owner_email": dash(row["rights_owner_email"]),
        "deadline_days": int(days) if days else None,
    }


def actual_fields(case):
    out = {k: case.get(k) for k in FIELDS}
    out["asins"] = sorted(case.get("asins") or [])
    return out


def case_ids(case):
    s = set(case.get("complaint_ids") or [])
    if case.get("complaint_id"):
        s.add(case["complaint_id"])
    return s


def cases_for(row, cases):
    """The cases a case-opening manifest row must have produced."""
    ids = ids_of(row)
    if ids:
        return [c for c in cases if case_ids(c) & set(ids)]
    # No complaint id (an account-level warning): same kind, marketplace and ASINs.
    exp = expected_fields(row)
    return [c for c in cases if c.get("kind") == exp["kind"] and
            c.get("marketplace") == exp["marketplace"] and
            sorted(c.get("asins") or []) == exp["asins"]]


def load_json(path, what, quiet=False):
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except (OSError, ValueError) as e:
        report(False, what + " is valid JSON", [str(e)])
        return None
    if not isinstance(data, list):
        report(False, what + " is a JSON array", [repr(data)[:200]])
        return None
    if not quiet:
        report(True, what + " is a JSON array of %d cases" % len(data))
    return data


def check_cases(manifest, cases_path):
    global CONTEXT
    CONTEXT = read_context(os.path.join(os.path.dirname(manifest), "context.tsv"))
    rows = read_manifest(manifest)
    cases = load_json(cases_path, "ipcase list --all --json")
    if cases is None:
        return
    opening = [r for r in rows if r["kind"] in OPENING]
    claimed = {}
    for row in opening:
        name = row["file"].split("_")[0]
        found = cases_for(row, cases)
        if len(found) != 1:
            report(False, "%s opens exactly one case" % name,
                   ["found %d: %s" % (len(found), json.dumps(found, ensure_ascii=False)[:600])])
            continue
        case = found[0]
        claimed.setdefault(case.get("id"), []).append(row["file"])
        exp, act = expected_fields(row), actual_fields(case)
        # context.tsv names manifest fields the mail itself never states (the
        # case of an unseen complaint cannot know them): null is right there too.
        loose = CONTEXT.get(row["file"], set())
        diff = ["%s: expected %r, got %r" % (k, exp[k], act[k]) for k in FIELDS
                if exp[k] != act[k] and not (k in loose and act[k] is None)]
        report(not diff, "%s case #%s fields match the manifest" % (name, case.get("id")), diff)

        # Follow-ups of this complaint join its case: one message each.
        ids = set(ids_of(row))
        follow = [r for r in rows if r["kind"] in FOLLOW_UP and
                  (dash(r["thread_of"]) in ids or set(ids_of(r)) & ids)]
        want_msgs = 1 + len(follow)
        report(case.get("messages") == want_msgs,
               "%s case #%s has %d messages (notice + %s)" % (
                   name, case.get("id"), want_msgs,
                   ", ".join(r["file"].split("_")[0] for r in follow) or "no follow-up"),
               ["messages = %r" % case.get("messages")])

        # An authentic reinstatement ends the complaint; a rights owner's own
        # retraction (not Amazon's confirmation) leaves the case open.
        reinstated = any(r["kind"] == "reinstatement" and set(ids_of(r)) & ids for r in rows)
        want_status = "reinstated" if reinstated else "open"
        report(case.get("status") == want_status,
               "%s case #%s status is %s" % (name, case.get("id"), want_status),
               ["status = %r" % case.get("status")])

    shared = {k: v for k, v in claimed.items() if len(v) > 1}
    report(not shared, "no two notices share one case",
           ["case #%s: %s" % (k, ", ".join(v)) for k, v in shared.items()])
    report(len(cases) == len(opening),
           "%d cases for %d case-opening notices" % (len(cases), len(opening)),
           ["case #%s kind %s complaint %s" % (c.get("id"), c.get("kind"), c.get("complaint_id"))
            for c in cases if c.get("id") not in claimed])

    bad = set()
    for r in rows:
        if r["kind"] in ("phishing", "negative"):
            bad |= set(ids_of(r))
    hits = ["case #%s has %s" % (c.get("id"), sorted(case_ids(c) & bad))
            for c in cases if case_ids(c) & bad]
    report(not hits, "no case carries a phishing complaint id (%s)" % ", ".join(sorted(bad)), hits)
    kinds = sorted({c.get("kind") for c in cases} - set(OPENING))
    report(not kinds, "every case has a case-opening kind", ["kinds: %s" % kinds])


def read_mails(maildir):
    mails = []
    for root, dirs, files in os.walk(maildir):
        dirs.sort()
        if os.path.basename(root) == "tmp":
            continue
        for fn in sorted(files):
            path = os.path.join(root, fn)
            with open(path, "rb") as f:
                msg = email.message_from_binary_file(f, policy=email.policy.default)
            mails.append((path, msg))
    return mails


def read_envelopes(path):
    envs = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.strip():
                envs.append(json.loads(line))
    return envs


def envelope_rcpts(env):
    for key in ("rcpt_tos", "rcpts", "rcpt_to", "recipients", "to"):
        if key in env:
            v = env[key]
            return [v] if isinstance(v, str) else list(v)
    return []


def addresses(msg, header):
    return [a.addr_spec.lower() for h in msg.get_all(header, []) for a in h.addresses]


def check_smtp(manifest, cases_path, maildir, envlog, seller):
    rows = read_manifest(manifest)
    cases = load_json(cases_path, cases_path, quiet=True)
    if cases is None:
        return
    mails = read_mails(maildir)
    envs = read_envelopes(envlog)
    seller = seller.lower()
    report(len(mails) > 0 and len(mails) == len(envs),
           "the SMTP server received %d mails (%d envelopes logged)" % (len(mails), len(envs)))
    norcpt = [json.dumps(e)[:200] for e in envs if seller not in [a.lower() for a in envelope_rcpts(e)]]
    report(not norcpt, "every envelope goes to %s" % seller, norcpt)

    bad_hdr = []
    ids = {}
    for path, m in mails:
        who = os.path.basename(path)
        if seller not in addresses(m, "To"):
            bad_hdr.append("%s: To %r" % (who, m.get("To")))
        if (m.get("Auto-Submitted") or "").strip().lower() != "auto-generated":
            bad_hdr.append("%s: Auto-Submitted %r" % (who, m.get("Auto-Submitted")))
        mid = (m.get("Message-ID") or "").strip()
        if not re.fullmatch(r"<[^<>@\s]+@[^<>@\s]+>", mid):
            bad_hdr.append("%s: Message-ID %r" % (who, mid))
        ids.setdefault(mid, []).append(who)
    report(not bad_hdr, "every mail has To %s, Auto-Submitted: auto-generated and a Message-ID" % seller,
           bad_hdr[:20])
    dups = ["%s in %s" % (k, ", ".join(v)) for k, v in ids.items() if len(v) > 1]
    report(not dups, "Message-IDs are unique", dups)

    subjects = [str(m.get("Subject") or "") for _, m in mails]
    missing = []
    for c in cases:
        pre = "[ipcased #%s]" % c.get("id")
        if not any(s.startswith(pre) for s in subjects):
            missing.append("case #%s (%s %s): no subject starting %r" % (
                c.get("id"), c.get("kind"), c.get("complaint_id"), pre))
    opening = [r for r in rows if r["kind"] in OPENING]
    per_case = {}
    for subj in subjects:
        m = re.match(r"\[ipcased #(\d+)\]", subj)
        key = "#" + m.group(1) if m else "no case"
        per_case[key] = per_case.get(key, 0) + 1
    details = missing + (["mails per case: " + ", ".join(
        "%s: %d" % kv for kv in sorted(per_case.items()))] if missing else [])
    if len(cases) < len(opening):
        details.append("only %d cases for %d case-opening notices" % (len(cases), len(opening)))
    report(not details, "a reminder for each of the %d cases" % len(cases), details)
    stray = [s for s in subjects if not s.startswith("[ipcased")]
    report(not stray, "every subject starts with \"[ipcased\"", stray[:20])
    phish = [s for s in subjects if "phishing" in s.lower()]
    report(bool(phish), "a phishing alert arrived", ["subjects: %r" % subjects[:40]])


def check_same(a, b):
    ja = load_json(a, a, quiet=True)
    jb = load_json(b, b, quiet=True)
    if ja is None or jb is None:
        return
    diff = []
    if ja != jb:
        ma = {c.get("id"): c for c in ja}
        mb = {c.get("id"): c for c in jb}
        for k in sorted(set(ma) | set(mb), key=str):
            ca, cb = ma.get(k), mb.get(k)
            if ca is None or cb is None:
                diff.append("case #%s: %s" % (k, "new" if ca is None else "gone"))
            elif ca != cb:
                for f in sorted(set(ca) | set(cb)):
                    if ca.get(f) != cb.get(f):
                        diff.append("case #%s %s: %s -> %s" % (k, f, json.dumps(ca.get(f), ensure_ascii=False)[:100],
                                                               json.dumps(cb.get(f), ensure_ascii=False)[:100]))
    report(ja == jb, "a second run leaves the cases as they were (%d)" % len(jb), diff[:10])


def main(argv):
    if len(argv) >= 2 and argv[1] == "cases" and len(argv) == 4:
        check_cases(argv[2], argv[3])
    elif len(argv) >= 2 and argv[1] == "smtp" and len(argv) == 7:
        check_smtp(*argv[2:7])
    elif len(argv) >= 2 and argv[1] == "same" and len(argv) == 4:
        check_same(argv[2], argv[3])
    else:
        sys.stderr.write(__doc__)
        return 2
    return status()


if __name__ == "__main__":
    sys.exit(main(sys.argv))
