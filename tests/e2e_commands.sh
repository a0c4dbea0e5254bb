#!/bin/bash
# e2e_commands.sh — end to end against real servers: the seller answers a reminder by mail ("done review", "snooze 2d", "note ..."), ipcased obeys once and confirms in the thread; replies it must not obey change nothing and send nothing.
#
# A notice dated two days ago (tests/samples/s01 with a fresh Date and
# complaint id) opens a case whose first tasks are overdue; one `ipcased
# --once` mails the reminders to the test SMTP server.  The seller's reply to
# the review reminder, built here from the reminder received, is appended to
# INBOX: its own lines are obeyed (the review task done, the case snoozed, a
# note), the quoted "done appeal" is not, and a confirmation threaded under
# the reply is mailed.  The same reply seen again (INBOX again, and its copy
# in Sent) changes nothing and sends nothing.  Then, one at a time, mail that
# must never be obeyed: the reply from an unknown address, a reply to an id
# whose token was altered, an out-of-office (Auto-Submitted: auto-replied)
# with a valid token and "close retracted", our own reminders looped back,
# and a bounce of a reminder: each leaves `ipcase show --json` and `ipcase
# list --all --json` as they were, sends nothing, and is logged with its
# reason.  No run changes a flag in the mailbox.
# KEEP=1 keeps the work directory (kept anyway on failure).
set -u
cd "$(dirname "$0")/.." || exit 1
. tests/lib/tap.sh
. tests/lib/servers.sh
. tests/lib/e2e.sh

NOTICE=tests/samples/s01_us_trademark_inauthentic_2asins.eml
SAMPLE_COMPLAINT=12904418236
COMPLAINT=12904477015
SELLER=ops@shop.example
STRANGER=someone@else.example

e2e_init cmd

e2e_require_built
[ -r "$NOTICE" ] || tap_bail "the sample notice $NOTICE is there"

e2e_servers_start
e2e_config --check

# Every message ever appended, per folder: no run may add, remove or flag one.
N_INBOX=0
N_SENT=0
: >"$DIR/flags.diff"
append() {
	local folder="$1" f
	shift
	for f in "$@"; do
		mail_append "$DIR" "$folder" "$f" >>"$DIR/append.log" 2>&1 || return 1
		case "$folder" in
		INBOX) N_INBOX=$((N_INBOX + 1)) ;;
		Sent) N_SENT=$((N_SENT + 1)) ;;
		esac
	done
}

flags_snapshot() {
	mail_flags "$DIR" INBOX >"$1.inbox" 2>&1
	mail_flags "$DIR" Sent >"$1.sent" 2>&1
}

# run NAME: one `ipcased --once`, its log in $DIR/NAME.log; the flags of every
# message before and after it are compared (differences in flags.diff).
run() {
	local name="$1" rc f
	flags_snapshot "$DIR/$name.flags.before"
	timeout 120 "$IPCASED" -c "$CONF" --once --foreground ${IPCASED_VERBOSE:+-v} >"$DIR/$name.log" 2>&1 </dev/null
	rc=$?
	flags_snapshot "$DIR/$name.flags.after"
	for f in inbox sent; do
		diff -u --label "$name before ($f)" --label "$name after ($f)" \
		    "$DIR/$name.flags.before.$f" "$DIR/$name.flags.after.$f" >>"$DIR/flags.diff"
	done
	tap_ok "$rc" "$name: ipcased --once exits 0 (exit $rc)" "$DIR/$name.log"
}

# state NAME: `ipcase show CASE --json` and `ipcase list --all --json` into $DIR/NAME.{show,list}.json.
state() {
	"$IPCASE" -c "$CONF" show "$CASE" --json >"$DIR/$1.show.json" 2>"$DIR/$1.show.err" &&
	    "$IPCASE" -c "$CONF" list --all --json >"$DIR/$1.list.json" 2>"$DIR/$1.list.err"
}

# The mail the SMTP server received so far (its envelope log and files).
smtp_snapshot() {
	cp "$SMTP_LOG" "$1.smtp.log"
	find "$SMTP_MAILDIR" -type f | sort >"$1.smtp.files"
}

# smtp_unchanged NAME: nothing arrived since smtp_snapshot NAME.
smtp_unchanged() {
	{
		diff "$DIR/$1.smtp.log" "$SMTP_LOG"
		find "$SMTP_MAILDIR" -type f | sort | diff "$DIR/$1.smtp.files" -
	} >"$DIR/$1.smtp.diff" 2>&1
}

# mkmail OUT FROM TO SUBJECT MESSAGE-ID IN-REPLY-TO REFERENCES BODY [HEADER=VALUE...]:
# a plain-text mail as a mail client writes it (Date now, a non-ASCII subject
# encoded).  Written by hand: Python's folding would encode a long msg-id.
mkmail() {
	"$PY" - "$@" <<'PY'
import sys, email.utils
from email.header import Header
out, frm, to, subject, msgid, irt, refs, body = sys.argv[1:9]
try:
    subject.encode("ascii")
except UnicodeEncodeError:
    subject = Header(subject, "utf-8", maxlinelen=76).encode()
h = [("Date", email.utils.formatdate(localtime=False)), ("From", frm), ("To", to),
     ("Subject", subject), ("Message-ID", msgid)]
if irt:
    h.append(("In-Reply-To", irt))
if refs:
    h.append(("References", refs))
h += [tuple(x.split("=", 1)) for x in sys.argv[9:]]
h += [("User-Agent", "Thunderbird/115.10.1"), ("MIME-Version", "1.0"),
      ("Content-Type", "text/plain; charset=utf-8; format=flowed"),
      ("Content-Transfer-Encoding", "8bit")]
with open(out, "wb") as f:
    f.write("".join("%s: %s\n" % x for x in h).encode("ascii"))
    f.write(b"\n" + body.encode("utf-8"))
PY
}

# header FILE NAME: the (unfolded) value of a header of a received mail.
header() {
	"$PY" - "$1" "$2" <<'PY'
import sys, email, email.policy
with open(sys.argv[1], "rb") as f:
    m = email.message_from_binary_file(f, policy=email.policy.default)
v = m.get(sys.argv[2])
print("" if v is None else " ".join(str(v).split()))
PY
}

# ---- the notice and its reminders ----

# Dated two days ago, so that review and stop_selling (24h) are overdue now.
notice_date=$(date -u -d '-2 days' '+%a, %d %b %Y %H:%M:%S +0000')
sed -e "s/^Date: .*/Date: $notice_date/" -e "s/$SAMPLE_COMPLAINT/$COMPLAINT/g" \
    -e "s/^Message-ID: <\([^@]*\)@/Message-ID: <\1-cmd@/" "$NOTICE" >"$DIR/notice.eml"
append INBOX "$DIR/notice.eml" || tap_bail "the notice is delivered" "$DIR/append.log"
run run1

"$IPCASE" -c "$CONF" list --json >"$DIR/run1.list.json" 2>"$DIR/run1.list.err"
CASE=$("$PY" - "$DIR/run1.list.json" "$COMPLAINT" <<'PY'
import json, sys
cases = [c for c in json.load(open(sys.argv[1])) if c.get("complaint_id") == sys.argv[2]]
if len(cases) == 1 and cases[0]["status"] == "open":
    print(cases[0]["id"])
PY
)
[ -n "$CASE" ]
tap_ok $? "the notice opened one case for complaint $COMPLAINT (case ${CASE:-?})" "$DIR/run1.list.json" ||
    tap_bail "a case to answer reminders about"

# The review reminder: its Message-ID carries the case's token.
REMINDER=$("$PY" - "$SMTP_LOG" "$CASE" <<'PY'
import json, sys
for line in open(sys.argv[1]):
    e = json.loads(line)
    if (".r%s.review." % sys.argv[2]) in (e.get("message_id") or ""):
        print(e["file"])
        break
PY
)
[ -n "$REMINDER" ] && [ -r "$REMINDER" ]
tap_ok $? "a reminder for task review of case $CASE reached the SMTP server" "$SMTP_LOG" ||
    tap_bail "a reminder to answer"
REM_ID=$(header "$REMINDER" Message-ID)
REM_FROM=$(header "$REMINDER" From)
REM_SUBJECT=$(header "$REMINDER" Subject)
TOKEN=$(header "$REMINDER" X-Ipcased-Token)
case "$REM_ID" in
"<"*".r$CASE.review."*".$TOKEN@shop.example>") rc=0 ;;
*) rc=1 ;;
esac
[ "${#TOKEN}" -eq 16 ] && [ -z "${TOKEN//[0-9a-f]/}" ] || rc=1
tap_ok "$rc" "the reminder's Message-ID $REM_ID ends with the case's 16-hex-digit token"

# Other reminders of the case, threaded under the first one (for the loop-back case).
OTHER_REMINDER=$("$PY" - "$SMTP_LOG" "$CASE" <<'PY'
import json, sys
for line in open(sys.argv[1]):
    e = json.loads(line)
    mid = e.get("message_id") or ""
    if (".r%s." % sys.argv[2]) in mid and ".review." not in mid:
        print(e["file"])
        break
PY
)

# ---- the seller's reply ----

REPLY_ID="<cmd1.$(openssl rand -hex 8)@shop.example>"
REPLY_BODY='done review
snooze 2d
note called the owner

> quoted reminder text
> done appeal
'
mkmail "$DIR/reply.eml" "Shop Ops <$SELLER>" "$REM_FROM" "Re: $REM_SUBJECT" \
    "$REPLY_ID" "$REM_ID" "$REM_ID" "$REPLY_BODY" || tap_bail "the seller's reply is written"
state before-reply || tap_bail "ipcase show/list before the reply" "$DIR/before-reply.show.err"
smtp_snapshot "$DIR/before-reply"
append INBOX "$DIR/reply.eml" || tap_bail "the reply is delivered" "$DIR/append.log"
t0=$(date +%s)
run run2
t1=$(date +%s)
state after-reply || tap_bail "ipcase show/list after the reply" "$DIR/after-reply.show.err"

cat >"$DIR/check_reply.py" <<'PY'
import json, sys, datetime
before, after = (json.load(open(p)) for p in sys.argv[1:3])
t0, t1, seller = int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]

def check(ok, what, detail=None):
    print(("ok - " if ok else "not ok - ") + what)
    if not ok and detail is not None:
        print("#   got: %s" % json.dumps(detail))

def epoch(s):
    return int(datetime.datetime.strptime(s, "%Y-%m-%dT%H:%M:%SZ")
               .replace(tzinfo=datetime.timezone.utc).timestamp())

def task(c, name):
    return next((t for t in c["tasks"] if t["task"] == name), None)

rv = task(after, "review")
check(task(before, "review") is not None and task(before, "review")["status"] == "open",
      "review was open before the reply", task(before, "review"))
check(rv is not None and rv["status"] == "done" and rv["done_at"] is not None and
      t0 - 1 <= epoch(rv["done_at"]) <= t1 + 1, "done review: the review task is done now", rv)
ap = task(after, "appeal")
check(ap is not None and ap["status"] == "open" and ap["done_at"] is None,
      "the quoted \"done appeal\" was not obeyed: appeal is still open", ap)
others = {t["task"]: t["status"] for t in after["tasks"] if t["task"] != "review"}
check(others == {t["task"]: t["status"] for t in before["tasks"] if t["task"] != "review"},
      "no other task changed", others)
su = after.get("snoozed_until")
check(su is not None and t0 + 2 * 86400 - 1 <= epoch(su) <= t1 + 2 * 86400 + 1,
      "snooze 2d: the case is snoozed until two days from now", su)
texts = [n["text"] for n in after["notes"]]
check(texts == ["called the owner"], "note called the owner: exactly that note is on the case",
      after["notes"])
check(after["status"] == "open" and after["closed"] is None, "the case is still open",
      [after["status"], after["closed"]])
events = [e["what"] for e in after["events"][len(before["events"]):]]
by = "(by mail from %s)" % seller
check(any(e.startswith("task review done") and by in e for e in events),
      "an event says review was done by mail from the seller", events)
check(any(e.startswith("reminders snoozed until") and by in e for e in events),
      "an event says the case was snoozed by mail", events)
check(any(e == "note added " + by for e in events), "an event says a note was added by mail", events)
check(not any("appeal" in e for e in events), "no event mentions appeal", events)
cmd = [m for m in after["messages"] if m["role"] == "seller"]
check(len(after["messages"]) == len(before["messages"]) + 1 and len(cmd) == 1 and
      cmd[0]["kind"] == "command", "the reply is recorded once on the case, as a command",
      after["messages"])
PY
tap_feed_cmd "the reply's commands checked" "$PY" "$DIR/check_reply.py" "$DIR/before-reply.show.json" \
    "$DIR/after-reply.show.json" "$t0" "$t1" "$SELLER"

# Exactly one mail went out: the confirmation, threaded under the reply.
CONFIRM=$("$PY" - "$DIR/before-reply.smtp.log" "$SMTP_LOG" <<'PY'
import json, sys
old = open(sys.argv[1]).read().splitlines()
new = open(sys.argv[2]).read().splitlines()
added = new[len(old):]
if new[:len(old)] == old and len(added) == 1:
    print(json.loads(added[0])["file"])
PY
)
[ -n "$CONFIRM" ] && [ -r "$CONFIRM" ]
tap_ok $? "the reply caused exactly one mail" "$SMTP_LOG" || tap_bail "a confirmation to check"
cat >"$DIR/check_confirm.py" <<'PY'
import sys, email, email.policy
path, reply_id, rem_id, token, seller, case = sys.argv[1:7]
m = email.message_from_binary_file(open(path, "rb"), policy=email.policy.default)

def check(ok, what, got=None):
    print(("ok - " if ok else "not ok - ") + what)
    if not ok:
        print("#   got: %r" % (got,))

def h(name):
    v = m.get(name)
    return None if v is None else " ".join(str(v).split())

check(h("In-Reply-To") == reply_id, "In-Reply-To is the reply's Message-ID", h("In-Reply-To"))
refs = (h("References") or "").split()
check(reply_id in refs and refs[-1] == reply_id, "References end with the reply's Message-ID", refs)
check(h("Auto-Submitted") == "auto-generated", "Auto-Submitted: auto-generated", h("Auto-Submitted"))
check(h("X-Ipcased-Kind") == "confirm" and h("X-Ipcased-Case") == case,
      "X-Ipcased-Kind: confirm, X-Ipcased-Case: %s" % case, [h("X-Ipcased-Kind"), h("X-Ipcased-Case")])
mid = h("Message-ID") or ""
check(mid.endswith("." + token + "@shop.example>") and mid != rem_id,
      "its own Message-ID carries the token (it may be answered too)", mid)
check(h("To") == seller, "it goes to the seller", h("To"))
subject = h("Subject") or ""
check(subject.startswith("Re: ") or "Done: review" in subject,
      "its subject says what was done", subject)
body = m.get_body(preferencelist=("plain",))
text = body.get_content() if body is not None else ""
for line in ("Applied: done review", "Applied: snooze 2d", "Applied: note called the owner"):
    check(line in text, "the text says \"%s\"" % line, text[:400])
check("appeal" not in text.split("The case")[0], "the text says nothing about appeal", text[:400])
PY
tap_feed_cmd "the confirmation checked" "$PY" "$DIR/check_confirm.py" "$CONFIRM" "$REPLY_ID" \
    "$REM_ID" "$TOKEN" "$SELLER" "$CASE"

grep -q "cases: case $CASE: 3 commands from $SELLER" "$DIR/run2.log"
tap_ok $? "the log says 3 commands came from $SELLER" "$DIR/run2.log"

# ---- the same reply again ----

smtp_snapshot "$DIR/run3"
state before-run3
run run3
state after-run3
cmp -s "$DIR/before-run3.show.json" "$DIR/after-run3.show.json" &&
    cmp -s "$DIR/before-run3.list.json" "$DIR/after-run3.list.json"
tap_ok $? "a run without new mail changes nothing"
smtp_unchanged run3
tap_ok $? "a run without new mail sends nothing (no reminder while snoozed, no second confirmation)" \
    "$DIR/run3.smtp.diff"

# The same mail once more in INBOX, and the copy the seller's client kept in Sent.
append INBOX "$DIR/reply.eml" && append Sent "$DIR/reply.eml" ||
    tap_bail "the reply is delivered again" "$DIR/append.log"
smtp_snapshot "$DIR/run4"
run run4
state after-run4
{
	diff "$DIR/after-run3.show.json" "$DIR/after-run4.show.json"
	diff "$DIR/after-run3.list.json" "$DIR/after-run4.list.json"
} >"$DIR/run4.state.diff" 2>&1
tap_ok $? "the same reply seen again (INBOX and Sent) applies nothing twice" "$DIR/run4.state.diff"
smtp_unchanged run4
tap_ok $? "the same reply seen again sends no second confirmation" "$DIR/run4.smtp.diff"
[ "$(grep -c 'already recorded' "$DIR/run4.log")" -eq 2 ]
tap_ok $? "both copies are logged as already recorded" "$DIR/run4.log"

# ---- an answer to the confirmation, seen only in Sent ----

# The seller's reply goes to smtp.from, which need not deliver into the
# watched mailbox: the copy in the Sent folder is enough.  It answers the
# confirmation (whose Message-ID carries the token too) with a command
# written the way people write, and a signature naming another verb.
CONFIRM_ID=$(header "$CONFIRM" Message-ID)
REPLY2_ID="<cmd4.$(openssl rand -hex 8)@shop.example>"
mkmail "$DIR/reply2.eml" "Shop Ops <$SELLER>" "$REM_FROM" "Re: $(header "$CONFIRM" Subject)" \
    "$REPLY2_ID" "$CONFIRM_ID" "$(header "$CONFIRM" References) $CONFIRM_ID" 'Done: Stop selling.

-- 
close the shop at 6pm
'
state before-reply2
smtp_snapshot "$DIR/before-reply2"
append Sent "$DIR/reply2.eml" || tap_bail "the second reply is delivered to Sent" "$DIR/append.log"
run run5
state after-reply2
"$PY" - "$DIR/before-reply2.show.json" "$DIR/after-reply2.show.json" >"$DIR/reply2.check" 2>&1 <<'PY'
import json, sys
before, after = (json.load(open(p)) for p in sys.argv[1:3])
st = lambda c: {t["task"]: t["status"] for t in c["tasks"]}
want = dict(st(before), stop_selling="done")
print(json.dumps([st(after), after["status"], after["notes"]]))
sys.exit(0 if st(before)["stop_selling"] == "open" and st(after) == want and
         after["status"] == "open" and after["notes"] == before["notes"] else 1)
PY
tap_ok $? "\"Done: Stop selling.\" from the Sent copy: stop_selling done, nothing else (the signature is not read)" \
    "$DIR/reply2.check"
CONFIRM2=$("$PY" - "$DIR/before-reply2.smtp.log" "$SMTP_LOG" <<'PY'
import json, sys
old = open(sys.argv[1]).read().splitlines()
new = open(sys.argv[2]).read().splitlines()
if new[:len(old)] == old and len(new) == len(old) + 1:
    print(json.loads(new[-1])["file"])
PY
)
rc=1
[ -n "$CONFIRM2" ] && [ "$(header "$CONFIRM2" In-Reply-To)" = "$REPLY2_ID" ] &&
    grep -q "Applied: done stop_selling" "$CONFIRM2" && rc=0
tap_ok "$rc" "one confirmation, threaded under the Sent reply, says \"Applied: done stop_selling\"" \
    "$SMTP_LOG"

# ---- mail that must not be obeyed ----

# negative NAME WHAT REASON FILE [FOLDER]: appended alone, one run; nothing
# changes, nothing is sent, and a log line matches REASON (an extended regex).
negative() {
	local name="$1" what="$2" reason="$3" file="$4" folder="${5:-INBOX}"
	state "before-$name"
	smtp_snapshot "$DIR/$name"
	append "$folder" "$file" || { tap_ok 1 "$what: delivered" "$DIR/append.log"; return; }
	run "$name"
	state "after-$name"
	{
		diff "$DIR/before-$name.show.json" "$DIR/after-$name.show.json"
		diff "$DIR/before-$name.list.json" "$DIR/after-$name.list.json"
	} >"$DIR/$name.state.diff" 2>&1
	tap_ok $? "$what: ipcase show and list unchanged" "$DIR/$name.state.diff"
	smtp_unchanged "$name"
	tap_ok $? "$what: nothing sent" "$DIR/$name.smtp.diff"
	grep -qE -- "$reason" "$DIR/$name.log"
	tap_ok $? "$what: logged (\"$reason\")" "$DIR/$name.log"
}

NEG_BODY='done stop selling
close retracted
note not from the seller
'

mkmail "$DIR/stranger.eml" "Some One <$STRANGER>" "$REM_FROM" "Re: $REM_SUBJECT" \
    "<cmd2.$(openssl rand -hex 8)@else.example>" "$REM_ID" "$REM_ID" "$NEG_BODY"
negative stranger "the reply from $STRANGER" \
    "case $CASE: command from an unknown address $STRANGER: ignored" "$DIR/stranger.eml"

# One hex digit of the token changed, in In-Reply-To and References alike.
last=${TOKEN: -1}
case "$last" in
0) new=1 ;;
*) new=0 ;;
esac
BAD_ID="${REM_ID%"$TOKEN@shop.example>"}${TOKEN%?}$new@shop.example>"
mkmail "$DIR/badtoken.eml" "Shop Ops <$SELLER>" "$REM_FROM" "Re: $REM_SUBJECT" \
    "<cmd3.$(openssl rand -hex 8)@shop.example>" "$BAD_ID" "$BAD_ID" "$NEG_BODY"
# The id is not one we sent: the token check must name it, whatever the wording.
negative badtoken "a reply to $BAD_ID (token altered)" \
    "(token|never sent|not ours|unknown).*ignored" "$DIR/badtoken.eml"

mkmail "$DIR/ooo.eml" "Shop Ops <$SELLER>" "$REM_FROM" "Automatic reply: $REM_SUBJECT" \
    "<ooo.$(openssl rand -hex 8)@shop.example>" "$REM_ID" "$REM_ID" \
    "close retracted
I am out of the office until Monday.
" "Auto-Submitted=auto-replied"
negative autoreply "an out-of-office with the token and \"close retracted\"" \
    "answered our mail automatically \\(Auto-Submitted\\): ignored" "$DIR/ooo.eml"

negative loop "our own review reminder looped back into INBOX" \
    "our own mail came back.*ignored" "$REMINDER"
if [ -n "$OTHER_REMINDER" ]; then
	negative loop2 "our own threaded reminder $(header "$OTHER_REMINDER" Message-ID) looped back" \
	    "our own mail came back.*ignored" "$OTHER_REMINDER"
else
	tap_ok 1 "a second, threaded reminder was received (to loop back)" "$SMTP_LOG"
fi

# The confirmation too comes back to the mailbox we watch: threaded under the
# seller's reply and our reminder, and never a command itself.
negative loop3 "our own confirmation looped back" "our own mail came back.*ignored" "$CONFIRM"

# A Postfix-style delivery status notification carrying the whole reminder.
{
	cat <<EOF
Return-Path: <>
Date: $(date -u '+%a, %d %b %Y %H:%M:%S +0000')
From: MAILER-DAEMON@mx.seller-mail.example (Mail Delivery System)
To: ipcased@shop.example
Subject: Undelivered Mail Returned to Sender
Message-ID: <bounce.$(openssl rand -hex 8)@mx.seller-mail.example>
Auto-Submitted: auto-replied
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status;
	boundary="BOUNCE-b0a3"

This is a MIME-encapsulated message.

--BOUNCE-b0a3
Content-Type: text/plain; charset=us-ascii

This is the mail system at host mx.seller-mail.example.

I'm sorry to have to inform you that your message could not
be delivered to one or more recipients.

done appeal
close retracted

<$SELLER>: mailbox full

--BOUNCE-b0a3
Content-Type: message/delivery-status

Reporting-MTA: dns; mx.seller-mail.example
Arrival-Date: $(date -u '+%a, %d %b %Y %H:%M:%S +0000')

Final-Recipient: rfc822; $SELLER
Action: failed
Status: 5.2.2
Diagnostic-Code: smtp; 552 5.2.2 mailbox full

--BOUNCE-b0a3
Content-Type: message/rfc822

EOF
	cat "$REMINDER"
	printf '\n--BOUNCE-b0a3--\n'
} >"$DIR/bounce.eml"
negative bounce "a bounce (multipart/report) of the reminder" \
    "a bounce of our own mail.*ignored" "$DIR/bounce.eml"

# The same bounce threaded under the reminder, as some servers send them.
sed -e "s/^Message-ID: <bounce\./Message-ID: <bounce2./" \
    -e "/^Subject: Undelivered/a In-Reply-To: $REM_ID" "$DIR/bounce.eml" >"$DIR/bounce2.eml"
negative bounce2 "a bounce threaded under the reminder (In-Reply-To)" \
    "answered our mail automatically.*ignored" "$DIR/bounce2.eml"

# ---- the mailbox ----

rc=0
[ -s "$DIR/flags.diff" ] && rc=1
flags_snapshot "$DIR/final.flags"
[ "$(wc -l <"$DIR/final.flags.inbox")" -eq "$N_INBOX" ] &&
    [ "$(wc -l <"$DIR/final.flags.sent")" -eq "$N_SENT" ] || rc=1
grep -q . "$DIR/final.flags.inbox" || rc=1
tap_ok "$rc" "no run changed a flag, added or removed a message ($N_INBOX in INBOX, $N_SENT in Sent)" \
    "$DIR/flags.diff"

rc=0
grep -qF -e "$MAIL_PASS" -e "$SMTP_PASS" "$DIR"/run*.log "$DIR"/*.json && rc=1
tap_ok "$rc" "no password in ipcased's output"

tap_done
