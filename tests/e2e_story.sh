#!/bin/bash
# e2e_story.sh — end to end against a private Dovecot: a whole complaint story in one mailbox ends as one case with a complete, ordered, verifiable evidence trail.
#
# The mailbox (tests/story, see its README.md) holds, in date order: an Amazon
# notice, a second complaint from the same rights owner, the seller's mail to the
# owner (Sent), the owner's reply, the seller's answer (Sent), the bounce of that
# answer, a notice of an unrelated complaint and a lawyer's mail about it, the
# owner's new-thread mail naming the complaint id, the owner's retraction to
# Amazon, Amazon's confirmation, notices naming a free-mail and a look-alike
# rights owner, and Amazon's confirmation of and answer to the seller's own
# Brand Registry report.  One `ipcased --once`, then `ipcase list/show --json`
# and `ipcase export` are checked; a second run must change nothing.
# KEEP=1 keeps the work directory (kept anyway on failure).
set -u
cd "$(dirname "$0")/.." || exit 1
. tests/lib/tap.sh
. tests/lib/servers.sh
. tests/lib/e2e.sh

STORY=tests/story

# The mailbox, appended in this order (the order of the Date headers).
# file, folder, the case it belongs to (by complaint id, see below), its role there.
PLAN='01_a1_notice_us_trademark.eml	INBOX	A1	notice
02_a2_notice_same_owner.eml	INBOX	A2	notice
03_sent_seller_to_owner.eml	Sent	A1	seller
04_owner_reply.eml	INBOX	A1	owner
05_sent_seller_answer_invoices.eml	Sent	A1	seller
06_bounce_mailbox_full.eml	INBOX	A1	bounce
07_b_notice_uk_copyright.eml	INBOX	B	notice
08_b_counsel_reply.eml	INBOX	B	-
09_owner_new_thread_broken_chain.eml	INBOX	A1	owner
10_owner_retraction_to_amazon.eml	INBOX	A1	owner
11_amazon_retraction_confirmed.eml	INBOX	A1	follow_up
12_f_notice_freemail_owner.eml	INBOX	F	notice
13_l_notice_lookalike_owner.eml	INBOX	L	notice
14_o_report_confirmation.eml	INBOX	O	notice
15_o_report_decision.eml	INBOX	O	follow_up'

e2e_init story

e2e_require_built
printf '%s\n' "$PLAN" >"$DIR/plan.tsv"

e2e_servers_start

rc=0
n=0
while IFS=$'\t' read -r file folder _; do
	mail_append "$DIR" "$folder" "$STORY/$file" >>"$DIR/append.log" 2>&1 || rc=1
	n=$((n + 1))
done <"$DIR/plan.tsv"
tap_ok "$rc" "the story's $n mails appended to INBOX and Sent in date order" "$DIR/append.log" ||
    tap_bail "the mailbox holds the story"

e2e_config

timeout 120 "$IPCASED" -c "$CONF" --once --foreground >"$DIR/run1.log" 2>&1 </dev/null
rc=$?
tap_ok "$rc" "ipcased --once --foreground exits 0 (exit $rc)" "$DIR/run1.log"

# Every case as `list --all --json` and `show --json` print it.
snapshot() {
	local tag="$1" id rc=0
	"$IPCASE" -c "$CONF" list --all --json >"$DIR/list$tag.json" 2>"$DIR/list$tag.err" || rc=1
	for id in $("$PY" -c 'import json,sys; print(" ".join(str(c["id"]) for c in json.load(open(sys.argv[1]))))' \
	    "$DIR/list$tag.json" 2>>"$DIR/list$tag.err"); do
		"$IPCASE" -c "$CONF" show "$id" --json >"$DIR/show$tag.$id.json" 2>>"$DIR/list$tag.err" || rc=1
	done
	return "$rc"
}
snapshot 1
tap_ok $? "ipcase list --all --json and show CASE --json exit 0 for every case" "$DIR/list1.err" ||
    tap_bail "the cases can be read"

# The assertions on the cases.  Prints "ok - " / "not ok - " lines for tap_feed
# and writes story.env (case numbers) and a1_order.txt (the story's mails in
# timeline order) for the export checks below.
export PYTHONPATH=$PWD/tests/lib	# tapcheck.py
cat >"$DIR/check_story.py" <<'PY'
import datetime
import email.parser
import email.policy
import email.utils
import hashlib
import json
import os
import sys
from tapcheck import report, status

story, work = sys.argv[1], sys.argv[2]
CIDS = {"A1": "17340028815", "A2": "17355190462", "B": "18822960417",
        "F": "16637702951", "L": "15519086634", "O": "19904417328"}
WHAT = {"A1": "the story", "A2": "the repeat complaint", "B": "the unrelated complaint",
        "F": "the free-mail owner", "L": "the look-alike owner", "O": "the seller's own report"}


def iso(dt):
    return dt.astimezone(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


plan = []
for line in open(os.path.join(work, "plan.tsv"), encoding="utf-8"):
    if not line.strip():
        continue
    f, folder, label, role = line.rstrip("\n").split("\t")
    raw = open(os.path.join(story, f), "rb").read()
    hdr = email.parser.BytesHeaderParser(policy=email.policy.compat32).parsebytes(raw)
    plan.append({"file": f, "folder": folder, "label": label, "role": role,
                 "sha": hashlib.sha256(raw).hexdigest(),
                 "date": iso(email.utils.parsedate_to_datetime(hdr["Date"]))})
by_sha = {p["sha"]: p for p in plan}

cases = json.load(open(os.path.join(work, "list1.json"), encoding="utf-8"))
shows = {}
for c in cases:
    with open(os.path.join(work, "show1.%d.json" % c["id"]), encoding="utf-8") as fh:
        shows[c["id"]] = json.load(fh)


def ids_of(c):
    s = set(c.get("complaint_ids") or [])
    if c.get("complaint_id"):
        s.add(c["complaint_id"])
    return s


def brief(c):
    return "case #%s %s %s %s ids %s" % (c.get("id"), c.get("kind"), c.get("direction"),
                                       c.get("status"), sorted(ids_of(c)))


# Which case is which: by complaint id.
case_of = {}
for label, cid in CIDS.items():
    found = [c for c in cases if cid in ids_of(c)]
    if report(len(found) == 1, "exactly one case carries complaint id %s (%s)" % (cid, WHAT[label]),
              [brief(c) for c in found] or ["no case; cases: %s" % "; ".join(brief(c) for c in cases)]):
        case_of[label] = shows[found[0]["id"]]
report(len(cases) == len(CIDS), "%d cases in all, one per complaint" % len(CIDS),
       [brief(c) for c in cases if not ids_of(c) & set(CIDS.values())] + ["%d cases" % len(cases)])

# Every mail is on the timeline of its own case and of no other.
where = {}
for cid, s in shows.items():
    for m in s.get("messages") or []:
        where.setdefault(m.get("sha256"), []).append(cid)
for p in plan:
    want = case_of.get(p["label"])
    got = where.get(p["sha"], [])
    ok = want is not None and got == [want["id"]]
    report(ok, "%s (%s) is on the timeline of %s and nowhere else" % (p["file"], p["folder"], WHAT[p["label"]]),
           ["on cases %s, expected #%s" % (got, want["id"] if want else "?")])
stray = [(cid, m.get("subject")) for cid, s in shows.items() for m in s.get("messages") or []
         if m.get("sha256") not in by_sha]
report(not stray, "no case holds a mail that is not in the story", stray)


def task(case, name):
    for t in case.get("tasks") or []:
        if t.get("task") == name:
            return t
    return None


def task_is(case, name, statuses):
    t = task(case, name)
    return t is not None and t.get("status") in statuses, ["%s: %s" % (name, t),
                                                             "tasks: %s" % [(x.get("task"), x.get("status"))
                                                                            for x in case.get("tasks") or []]]


order = []
a1 = case_of.get("A1")
if a1 is not None:
    want = [p for p in plan if p["label"] == "A1"]
    want.sort(key=lambda p: p["date"])
    order = want
    msgs = a1.get("messages") or []
    got_sha = [m.get("sha256") for m in msgs]
    report(got_sha == [p["sha"] for p in want],
           "the story's case holds its %d mails in date order" % len(want),
           ["got:  %s %s" % (m.get("date"), by_sha.get(m.get("sha256"), {}).get("file", m.get("subject")))
            for m in msgs] + ["want: %s %s" % (p["date"], p["file"]) for p in want])
    dates = [m.get("date") for m in msgs]
    report(dates == sorted(dates) and all(
        by_sha[m["sha256"]]["date"] == m.get("date") for m in msgs if m.get("sha256") in by_sha),
           "each timeline entry carries the mail's own Date, in order",
           ["%s %s" % (m.get("date"), by_sha.get(m.get("sha256"), {}).get("date")) for m in msgs])
    bad = [(m.get("subject"), m.get("role"), by_sha[m["sha256"]]["role"]) for m in msgs
           if m.get("sha256") in by_sha and by_sha[m["sha256"]]["role"] not in ("-", m.get("role"))]
    report(not bad, "each mail of the story has its role (notice, seller, owner, bounce, follow_up)", bad)
    folders = [(m.get("subject"), m.get("folder")) for m in msgs
               if m.get("sha256") in by_sha and m.get("folder") != by_sha[m["sha256"]]["folder"]]
    report(not folders, "each mail of the story names the folder it was found in", folders)
    norecv = [m.get("subject") for m in msgs if not m.get("received") or not m.get("sha256")]
    report(not norecv, "each mail of the story is kept with its SHA-256 and the time it was received", norecv)
    report(a1.get("status") == "retracted", "the story's case is resolved as retracted (by Amazon's confirmation)",
           ["status %r" % a1.get("status")])
    t = task(a1, "contact_owner")
    first = next(p for p in want if p["file"].startswith("03_"))
    report(t is not None and t.get("status") == "done" and t.get("done_at") == first["date"],
           "contact_owner is done, dated by the seller's first mail to the owner (%s)" % first["date"],
           ["contact_owner: %s" % t])
    ok, d = task_is(a1, "follow_up", ("done", "cancelled"))
    report(ok, "follow_up was created by the correspondence and is handled (not open)", d)
    ok, d = task_is(a1, "resume", ("open",))
    report(ok, "resume is open: relist after the retraction", d)
    ok, d = task_is(a1, "prevent", ("open",))
    report(ok, "prevent is open: the look-back after a resolved case", d)
    openish = [t.get("task") for t in a1.get("tasks") or []
               if t.get("status") == "open" and t.get("task") not in ("resume", "prevent")]
    report(not openish, "no other task of the resolved case is still open", openish)
    bounce = next(p for p in want if p["role"] == "bounce")
    ev = [e for e in a1.get("events") or [] if e.get("at") == bounce["date"]]
    bm = [m for m in msgs if m.get("sha256") == bounce["sha"]]
    report(bool(ev) and len(bm) == 1 and bm[0].get("role") == "bounce" and bm[0].get("date") == bounce["date"],
           "the bounce of the seller's mail is dated evidence: a bounce message and an event at %s" % bounce["date"],
           ["bounce messages: %s" % bm, "events: %s" % a1.get("events")])
    for f, what in (("10_", "the owner's own retraction (case stays open until Amazon confirms)"),
                    ("11_", "Amazon's retraction confirmation")):
        p = next(x for x in want if x["file"].startswith(f))
        ev = [e for e in a1.get("events") or [] if e.get("at") == p["date"]]
        report(bool(ev), "an event records %s at %s" % (what, p["date"]), ["events: %s" % a1.get("events")])
    report(a1.get("rights_owner_email") == "legal@lumenfield.example.com" and not a1.get("owner_flags") and
           sorted(a1.get("asins") or []) == ["B0DL4K7QXN", "B0DL4M2TZR"] and a1.get("marketplace") == "us",
           "the story's case keeps the notice's owner, ASINs and marketplace; an owner on its own domain is not flagged",
           ["%s %s %s %s" % (a1.get("rights_owner_email"), a1.get("owner_flags"), a1.get("asins"),
                             a1.get("marketplace"))])
    report(set(a1.get("complaint_ids") or []) == {CIDS["A1"]},
           "the story's case carries only its own complaint id", [a1.get("complaint_ids")])

a2 = case_of.get("A2")
if a2 is not None:
    ok, d = task_is(a2, "legal", ("open",))
    report(ok, "the repeat complainant's second complaint has an open legal task", d)
    report(a2.get("status") == "open" and len(a2.get("messages") or []) == 1,
           "the second complaint stays open with its notice only",
           ["status %r, messages %s" % (a2.get("status"), [m.get("subject") for m in a2.get("messages") or []])])
    ok, d = task_is(a2, "contact_owner", ("open",))
    report(ok, "the second complaint's contact_owner is still open (the seller wrote about the first)", d)

b = case_of.get("B")
if b is not None:
    report(task(b, "legal") is None, "the unrelated single complaint has no legal task",
           ["legal: %s" % task(b, "legal")])
    report(b.get("status") == "open" and set(b.get("complaint_ids") or []) == {CIDS["B"]},
           "the unrelated case stays open with its own complaint id only",
           ["status %r ids %s" % (b.get("status"), b.get("complaint_ids"))])

f = case_of.get("F")
if f is not None:
    report("freemail" in (f.get("owner_flags") or ""),
           "a rights owner on a free-mail domain is flagged (%s)" % f.get("rights_owner_email"),
           ["owner_flags %r" % f.get("owner_flags")])
l = case_of.get("L")
if l is not None:
    report("lookalike" in (l.get("owner_flags") or ""),
           "a rights owner on a look-alike domain is flagged (%s)" % l.get("rights_owner_email"),
           ["owner_flags %r" % l.get("owner_flags")])

o = case_of.get("O")
if o is not None:
    report(o.get("direction") == "outbound" and o.get("kind") == "report_confirmation",
           "Amazon's confirmation of the seller's Brand Registry report opens an outbound case",
           ["direction %r kind %r" % (o.get("direction"), o.get("kind"))])
    ok, d = task_is(o, "await_decision", ("open", "done"))
    report(ok, "the outbound case has await_decision", d)
    ok1, d1 = task_is(o, "await_decision", ("done",))
    ok2, d2 = task_is(o, "recheck_listing", ("open",))
    report(ok1 and ok2, "Amazon's answer to the report finishes await_decision and opens recheck_listing", d1 + d2)
inbound = [brief(c) for c in cases if CIDS["O"] in ids_of(c) and c.get("direction") != "outbound"]
report(not inbound, "the seller's own report never opens a case against the seller", inbound)

with open(os.path.join(work, "story.env"), "w") as fh:
    for label, c in case_of.items():
        fh.write("CASE_%s=%d\n" % (label, c["id"]))
with open(os.path.join(work, "a1_order.txt"), "w") as fh:
    for p in order:
        fh.write("%s\t%s\n" % (p["file"], p["date"]))
sys.exit(status())
PY
tap_feed_cmd "cases checked against the story" "$PY" "$DIR/check_story.py" "$STORY" "$DIR"

CASE_A1=
# shellcheck disable=SC1091
[ -r "$DIR/story.env" ] && . "$DIR/story.env"
[ -n "$CASE_A1" ] || tap_bail "the story's case was found (no export to check)"

# The evidence vault: export, verify with the standard tool, compare bytes.
EXP=$DIR/export
"$IPCASE" -c "$CONF" export "$CASE_A1" "$EXP" >"$DIR/export.log" 2>&1
tap_ok $? "ipcase export $CASE_A1 DIR exits 0" "$DIR/export.log"
(cd "$EXP" && sha256sum -c SHA256SUMS) >"$DIR/sha256sum.log" 2>&1
tap_ok $? "sha256sum -c SHA256SUMS accepts the export" "$DIR/sha256sum.log"
rc=0
(cd "$EXP" && find . -maxdepth 1 -type f ! -name SHA256SUMS -printf '%f\n' | sort) >"$DIR/export.files"
awk '{ sub(/^\*/, "", $2); print $2 }' "$EXP/SHA256SUMS" | sort >"$DIR/sums.files"
diff "$DIR/export.files" "$DIR/sums.files" >"$DIR/sums.diff" 2>&1 || rc=1
grep -qx timeline.md "$DIR/sums.files" && grep -qx timeline.json "$DIR/sums.files" || rc=1
tap_ok "$rc" "SHA256SUMS covers every exported file, timeline.md and timeline.json included" "$DIR/sums.diff"

# NN-date-subject.eml in timeline order, each the very bytes that were appended.
rc=0
: >"$DIR/cmp.log"
find "$EXP" -maxdepth 1 -name '*.eml' -printf '%f\n' | sort >"$DIR/export.eml"
[ "$(wc -l <"$DIR/export.eml")" -eq "$(wc -l <"$DIR/a1_order.txt")" ] ||
    { rc=1; echo "$(wc -l <"$DIR/export.eml") .eml files for $(wc -l <"$DIR/a1_order.txt") mails" >>"$DIR/cmp.log"; }
i=0
while IFS=$'\t' read -r file date; do
	i=$((i + 1))
	name=$(sed -n "${i}p" "$DIR/export.eml")
	if [ -z "$name" ]; then
		rc=1
		echo "#$i: no exported file for $file" >>"$DIR/cmp.log"
		continue
	fi
	day=$(echo "$date" | cut -c1-10 | tr -d -)
	case "$name" in
	"$(printf '%02d' "$i")-$day-"?*.eml) ;;
	*) rc=1; echo "#$i: $name is not $(printf '%02d' "$i")-$day-SUBJECT.eml" >>"$DIR/cmp.log" ;;
	esac
	cmp "$EXP/$name" "$STORY/$file" >>"$DIR/cmp.log" 2>&1 || rc=1
done <"$DIR/a1_order.txt"
tap_ok "$rc" "each exported NN-date-subject.eml is byte-identical to the mail appended (cmp)" "$DIR/cmp.log"

cat >"$DIR/check_timeline.py" <<'PY'
import hashlib
import json
import os
import sys

path, order_path, story = sys.argv[1:4]
try:
    with open(path, encoding="utf-8") as fh:
        doc = json.load(fh)
except (OSError, ValueError) as e:
    print("not ok - timeline.json parses\n#   %s" % e)
    sys.exit(1)
tl = doc.get("timeline") if isinstance(doc, dict) else None
ok = isinstance(tl, list) and len(tl) > 0
print(("ok" if ok else "not ok") + " - timeline.json parses and holds a timeline")
if not ok:
    sys.exit(1)
at = [e.get("at") for e in tl]
ok = None not in at and at == sorted(at)
print(("ok" if ok else "not ok") + " - timeline.json entries are in time order (%d entries)" % len(tl))
if not ok:
    print("#   %s" % at)
want = []
for line in open(order_path, encoding="utf-8"):
    f = line.split("\t")[0]
    want.append(hashlib.sha256(open(os.path.join(story, f), "rb").read()).hexdigest())
got = [e.get("sha256") for e in tl if e.get("type") == "message"]
ok2 = got == want
print(("ok" if ok2 else "not ok") + " - timeline.json lists the story's %d mails in order with their SHA-256" % len(want))
if not ok2:
    print("#   got  %s\n#   want %s" % (got, want))
case = doc.get("case") or {}
ok3 = case.get("status") == "retracted"
print(("ok" if ok3 else "not ok") + " - timeline.json's case is retracted")
if not ok3:
    print("#   status %r" % case.get("status"))
sys.exit(0 if ok and ok2 and ok3 else 1)
PY
tap_feed_cmd "timeline.json checked" "$PY" "$DIR/check_timeline.py" "$EXP/timeline.json" "$DIR/a1_order.txt" "$STORY"

# Evidence is never overwritten: a second export into the same directory fails.
find "$EXP" -type f -exec sha256sum {} + | sort >"$DIR/export.before"
"$IPCASE" -c "$CONF" export "$CASE_A1" "$EXP" >"$DIR/export2.log" 2>&1
rc=$?
find "$EXP" -type f -exec sha256sum {} + | sort >"$DIR/export.after"
[ "$rc" -ne 0 ] && cmp -s "$DIR/export.before" "$DIR/export.after"
tap_ok $? "a second export into the same directory is refused and changes no file (exit $rc)" "$DIR/export2.log"

# Second run: nothing new in the mailbox, so nothing changes and nothing is sent.
cp "$SMTP_LOG" "$DIR/smtp.before"
timeout 120 "$IPCASED" -c "$CONF" --once --foreground >"$DIR/run2.log" 2>&1 </dev/null
rc=$?
tap_ok "$rc" "a second ipcased --once exits 0 (exit $rc)" "$DIR/run2.log"
snapshot 2
tap_ok $? "ipcase list and show exit 0 after the second run" "$DIR/list2.err"
tap_feed_cmd "second run compared" "$PY" tests/lib/check_cases.py same "$DIR/list1.json" "$DIR/list2.json"
rc=0
: >"$DIR/show.diff"
for f in "$DIR"/show1.*.json; do
	g=$DIR/show2.${f##*/show1.}
	diff -u "$f" "$g" >>"$DIR/show.diff" 2>&1 || rc=1
done
tap_ok "$rc" "every case shows the same tasks, messages and events after the second run" "$DIR/show.diff"
diff "$DIR/smtp.before" "$SMTP_LOG" >"$DIR/smtp.diff" 2>&1
tap_ok $? "the second run sent no mail" "$DIR/smtp.diff"

tap_done
