#!/bin/bash
# e2e_hostile.sh — end to end against real servers: a notice whose subject and rights-owner name carry CR/LF (hidden in RFC 2047 words), header text and U+2028 opens its case, and every reminder ipcased mails about it keeps exactly our headers: nothing injected into a header, nothing into the SMTP dialogue.
#
# The notice is tests/samples/s01 with a fresh Date and complaint id, its
# Subject replaced by encoded words that decode to CR LF "Bcc:" lines, and
# the rights owner's line by one holding a line separator, a bare CR and
# "Bcc:" / "X-Injected:" text.  After `ipcased --once`, each mail the SMTP server received is
# parsed back by Python's email package: its header names must be exactly
# ours, no recipient but the seller's, and the server's command log must not
# show the attacker's address at all.
set -u
cd "$(dirname "$0")/.." || exit 1
. tests/lib/tap.sh
. tests/lib/servers.sh

PY=/usr/bin/python3
NOTICE=tests/samples/s01_us_trademark_inauthentic_2asins.eml
IPCASED=daemon/ipcased
IPCASE=daemon/ipcase
unset STATE_DIRECTORY CREDENTIALS_DIRECTORY

DIR=$(mktemp -d /tmp/ipcased-hostile.XXXXXX) || exit 1
cleanup() {
	servers_stop "$DIR"
	if [ "$TAP_FAILED" -eq 0 ] && [ "${KEEP:-0}" != 1 ]; then
		rm -rf "$DIR"
	else
		echo "# work directory kept: $DIR"
	fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

[ -x "$IPCASED" ] && [ -x "$IPCASE" ] || tap_bail "$IPCASED and $IPCASE are built"
servers_start "$DIR" >"$DIR/servers.log" 2>&1 ||
    tap_bail "private Dovecot and SMTP server start" "$DIR/servers.log"
tap_ok 0 "private Dovecot (imaps 127.0.0.1:$IMAP_PORT) and SMTP (127.0.0.1:$SMTP_PORT) started"
write_config "$DIR" >"$DIR/config.log" 2>&1 || tap_bail "test config written" "$DIR/config.log"
CONF=$DIR/ipcased.conf

# The hostile notice: same authenticated Amazon mail, hostile text inside.
"$PY" - "$NOTICE" "$DIR/hostile.eml" <<'PYEOF'
import email.utils, sys, time
raw = open(sys.argv[1], "rb").read().decode("utf-8")
head, body = raw.split("\r\n\r\n", 1)
lines = []
for line in head.split("\r\n"):
    if line.startswith("Subject:"):
        line = ("Subject: =?utf-8?q?Notice=3A_Policy_Warning=0D=0ABcc=3A_evil=40evil=2Eexample?=\r\n"
                " =?utf-8?b?DQpYLUluamVjdGVkOiBzdWJqZWN0?=")
    elif line.startswith("Date:"):
        line = "Date: " + email.utils.formatdate(time.time() - 2 * 86400)
    elif line.startswith("Message-ID:"):
        line = "Message-ID: <hostile.notice.1@email.amazonses.com>"
    lines.append(line)
body = body.replace("12904418236", "12904488801")
body = body.replace("-- Halvorsen Tool Co.",
                    "-- Halvorsen=E2=80=A8Bcc: evil@evil.example=0DX-Injected: yes")
open(sys.argv[2], "wb").write(("\r\n".join(lines) + "\r\n\r\n" + body).encode("utf-8"))
PYEOF
mail_append "$DIR" INBOX "$DIR/hostile.eml" >"$DIR/append.log" 2>&1
tap_ok $? "the hostile notice is in INBOX" "$DIR/append.log"

timeout 120 "$IPCASED" -c "$CONF" --once --foreground >"$DIR/run.log" 2>&1 </dev/null
rc=$?
tap_ok "$rc" "ipcased --once exits 0 (exit $rc)" "$DIR/run.log"
"$IPCASE" -c "$CONF" list --all --json >"$DIR/cases.json" 2>"$DIR/list.err"
tap_ok $? "ipcase list --all --json" "$DIR/list.err"

cat >"$DIR/check.py" <<'PYEOF'
import email, email.policy, json, os, sys
cases_path, maildir, envlog, commands = sys.argv[1:5]
n = 0
def report(ok, what, details=()):
    global n
    n += 1
    print(("ok - %s" if ok else "not ok - %s") % what)
    for d in details:
        print("#   " + str(d)[:300])
cases = json.load(open(cases_path))
mine = [c for c in cases if c.get("complaint_id") == "12904488801"]
report(len(mine) == 1, "the hostile notice opened one case", [json.dumps(cases)[:300]])
name = mine[0].get("rights_owner_name") or "" if mine else ""
report(not any(c in name for c in "\r\n\u2028\u2029\x00") and "Bcc" not in name and "X-Injected" not in name,
       "the rights owner's name as stored holds no line break and no header text", [repr(name)])
ours = {"return-path", "received", "date", "from", "to", "cc", "subject", "message-id",
        "in-reply-to", "references", "mime-version", "content-type", "auto-submitted",
        "x-auto-response-suppress", "x-ipcased-case", "x-ipcased-token", "x-ipcased-kind",
        "x-peer", "x-mailfrom", "x-rcptto", "delivered-to", "content-transfer-encoding"}
files = []
for sub in ("new", "cur"):
    d = os.path.join(maildir, sub)
    files += [os.path.join(d, f) for f in sorted(os.listdir(d))] if os.path.isdir(d) else []
report(len(files) > 0, "the SMTP server received %d mails" % len(files))
bad = []
for f in files:
    raw = open(f, "rb").read()
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    names = {k.lower() for k in msg.keys()}
    extra = names - ours
    if extra or msg.get_all("bcc") or msg.get_all("x-injected"):
        bad.append("%s: unexpected headers %s" % (os.path.basename(f), sorted(extra)))
    subj = str(msg.get("subject", ""))
    if "\r" in subj or "\n" in subj or "\u2028" in subj:
        bad.append("%s: subject holds a line break: %r" % (os.path.basename(f), subj))
    for part in msg.walk():
        for k in part.keys():
            if k.lower().startswith("x-injected") or k.lower() == "bcc":
                bad.append("%s: a part carries %s" % (os.path.basename(f), k))
report(not bad, "no mail carries an injected header (Bcc, X-Injected) or a broken subject", bad)
rcpts = set()
for line in open(envlog):
    if line.strip():
        rcpts.update(a.lower() for a in json.loads(line).get("rcpt_tos", []))
report(rcpts <= {"ops@shop.example"}, "every envelope goes to the seller only", sorted(rcpts))
log = open(commands, encoding="utf-8", errors="replace").read().lower()
report("evil" not in log, "the SMTP dialogue never names the attacker's address")
PYEOF
tap_feed_cmd "reminders about the hostile notice keep our headers" "$PY" "$DIR/check.py" \
    "$DIR/cases.json" "$SMTP_MAILDIR" "$SMTP_LOG" "$SMTP_COMMANDS"
tap_done
