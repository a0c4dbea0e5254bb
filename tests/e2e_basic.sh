#!/bin/bash
# e2e_basic.sh — end to end against real servers: the 25 samples in a private Dovecot, one `ipcased --once`, cases and reminders checked against the manifest.
#
# Proves: every case-opening notice opens exactly one case with the manifest's
# fields; follow-ups join their case; phishing and negatives open none; reminders
# and a phishing alert reach the SMTP server; no flag in the mailbox changes;
# a second run changes nothing and sends nothing.
# KEEP=1 keeps the work directory (kept anyway on failure).
set -u
cd "$(dirname "$0")/.." || exit 1
. tests/lib/tap.sh
. tests/lib/servers.sh
. tests/lib/e2e.sh

SAMPLES=${E2E_SAMPLES:-tests/samples}
MANIFEST=$SAMPLES/manifest.tsv
SELLER=ops@shop.example

e2e_init e2e

e2e_require_built
[ -r "$MANIFEST" ] || tap_bail "the samples are in $SAMPLES"

e2e_servers_start

# Deliver every sample into the folder the manifest names.
n_inbox=0
n_sent=0
rc=0
while IFS=$'\t' read -r file folder _; do
	[ "$file" = file ] && continue
	mail_append "$DIR" "$folder" "$SAMPLES/$file" >>"$DIR/append.log" 2>&1 || rc=1
	case "$folder" in
	INBOX) n_inbox=$((n_inbox + 1)) ;;
	Sent) n_sent=$((n_sent + 1)) ;;
	esac
done <"$MANIFEST"
mail_flags "$DIR" INBOX >"$DIR/flags.inbox.before" 2>>"$DIR/append.log" || rc=1
mail_flags "$DIR" Sent >"$DIR/flags.sent.before" 2>>"$DIR/append.log" || rc=1
[ "$(wc -l <"$DIR/flags.inbox.before")" -eq "$n_inbox" ] &&
    [ "$(wc -l <"$DIR/flags.sent.before")" -eq "$n_sent" ] || rc=1
tap_ok "$rc" "$((n_inbox + n_sent)) samples delivered ($n_inbox to INBOX, $n_sent to Sent)" "$DIR/append.log" ||
    tap_bail "the mailbox holds the samples"

e2e_config --check

# First run: read everything, open cases, send reminders.
timeout 120 "$IPCASED" -c "$CONF" --once --foreground >"$DIR/run1.log" 2>&1 </dev/null
rc=$?
tap_ok "$rc" "ipcased --once --foreground exits 0 (exit $rc)" "$DIR/run1.log"

"$IPCASE" -c "$CONF" list --all --json >"$DIR/cases1.json" 2>"$DIR/list1.err"
rc=$?
tap_ok "$rc" "ipcase list --all --json exits 0" "$DIR/list1.err"

tap_feed_cmd "cases checked against the manifest" \
    "$PY" tests/lib/check_cases.py cases "$MANIFEST" "$DIR/cases1.json"
tap_feed_cmd "mail received by the SMTP server checked" \
    "$PY" tests/lib/check_cases.py smtp "$MANIFEST" "$DIR/cases1.json" "$SMTP_MAILDIR" "$SMTP_LOG" "$SELLER"

check_flags() {
	local f rc=0
	: >"$DIR/flags.diff"
	for f in inbox sent; do
		mail_flags "$DIR" "$([ $f = inbox ] && echo INBOX || echo Sent)" >"$DIR/flags.$f.after" 2>&1
		diff -u "$DIR/flags.$f.before" "$DIR/flags.$f.after" >>"$DIR/flags.diff" || rc=1
	done
	tap_ok "$rc" "$1" "$DIR/flags.diff"
}
check_flags "no message gained or lost a flag, none was added or removed"

# The passwords must not show up in anything ipcased printed.
rc=0
grep -qF -e "$MAIL_PASS" -e "$SMTP_PASS" "$DIR/run1.log" "$DIR/cases1.json" && rc=1
tap_ok "$rc" "no password in ipcased's output"

# Second run: the same state, nothing new sent.
cp "$SMTP_LOG" "$DIR/smtp.before"
find "$SMTP_MAILDIR" -type f | sort >"$DIR/smtp.files.before"
timeout 120 "$IPCASED" -c "$CONF" --once --foreground >"$DIR/run2.log" 2>&1 </dev/null
rc=$?
tap_ok "$rc" "a second ipcased --once exits 0 (exit $rc)" "$DIR/run2.log"
"$IPCASE" -c "$CONF" list --all --json >"$DIR/cases2.json" 2>"$DIR/list2.err"
tap_ok $? "ipcase list --all --json exits 0 after the second run" "$DIR/list2.err"
tap_feed_cmd "second run compared" "$PY" tests/lib/check_cases.py same "$DIR/cases1.json" "$DIR/cases2.json"
find "$SMTP_MAILDIR" -type f | sort >"$DIR/smtp.files.after"
rc=0
cmp -s "$DIR/smtp.before" "$SMTP_LOG" && cmp -s "$DIR/smtp.files.before" "$DIR/smtp.files.after" || rc=1
diff "$DIR/smtp.before" "$SMTP_LOG" >"$DIR/smtp.diff" 2>&1
tap_ok "$rc" "the second run sent no mail" "$DIR/smtp.diff"
check_flags "after two runs the flags are still unchanged"

# The second run resumes after the last UID the first one committed: it
# fetches no header and no body again (a few hundred bytes of greeting,
# login and EXAMINE, against the whole mailbox the first time).
b1=$(sed -n 's/.*fetcher done: \([0-9]*\) bytes received.*/\1/p' "$DIR/run1.log" | tail -1)
b2=$(sed -n 's/.*fetcher done: \([0-9]*\) bytes received.*/\1/p' "$DIR/run2.log" | tail -1)
rc=1
[ -n "$b1" ] && [ -n "$b2" ] && [ "$b2" -lt 4096 ] && [ "$b2" -lt "$b1" ] && rc=0
tap_ok "$rc" "the second run fetched nothing again (${b2:-?} bytes received, first run ${b1:-?})"

tap_done
