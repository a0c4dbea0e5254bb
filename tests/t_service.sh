#!/bin/bash
# t_service.sh — ipcased as a systemd service: sd_notify (READY, STATUS, WATCHDOG, RELOADING, STOPPING), signals, journald logs, secret file modes, idle CPU.
#
# Runs the real daemon (no --once) against a private Dovecot and SMTP server
# with the environment systemd gives a Type=notify unit: NOTIFY_SOCKET (a
# listener here, tests/lib/notify_listen.py, records every datagram with its
# time and sender pid), WATCHDOG_USEC=2 s with WATCHDOG_PID, JOURNAL_STREAM.
# Times are measured and printed in the ok lines.
#
# Proves: READY=1 once the config is valid and the store open, also with the
# IMAP server unreachable (then one warning per outage, retries with
# back-off); STATUS= says accounts, states and open cases, and follows the
# first sync; WATCHDOG=1 keeps coming from the main loop; no busy waiting
# (CPU while idle); SIGUSR1 logs each account; SIGHUP reloads a valid config
# (RELOADING=1, READY=1) and refuses a broken one with file:line while the
# old one stays in force; SIGTERM and SIGINT stop within 5 s with STOPPING=1
# and exit 0, also in IDLE and in back-off; journald <N> prefixes, none under
# --foreground; inline passwords and password files readable by others are
# refused; no password in any output.
# KEEP=1 keeps the work directory (kept anyway on failure).
if [ -z "${BASH_VERSION:-}" ]; then
	exec bash "$0" "$@"
fi
set -u
cd "$(dirname "$0")/.." || exit 1
. tests/lib/tap.sh
. tests/lib/servers.sh
. tests/lib/e2e.sh

LISTEN=tests/lib/notify_listen.py
STOP_LIMIT=5		# seconds SIGTERM/SIGINT may take
READY_LIMIT=2		# seconds from exec to READY=1
CPU_LIMIT=2		# percent of one CPU while idle
# The test decides what the daemon sees of systemd, nothing is inherited.
unset STATE_DIRECTORY CREDENTIALS_DIRECTORY NOTIFY_SOCKET WATCHDOG_USEC WATCHDOG_PID \
    JOURNAL_STREAM LISTEN_FDS LISTEN_PID

e2e_init svc
STARTED=()		# pids of daemons and listeners started here

# Alive and not a zombie (a child that exited but was not waited for yet).
alive() {
	local st
	st=$(sed -n 's/^[0-9]* (.*) \([A-Za-z]\) .*/\1/p' "/proc/$1/stat" 2>/dev/null)
	[ -n "$st" ] && [ "$st" != Z ] && [ "$st" != X ]
}

# Stops what this script started, by pid, checking the pid still runs our program.
stop_started() {
	local pid
	for pid in "${STARTED[@]}"; do
		alive "$pid" || continue
		tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qE 'ipcased|notify_listen|silent\.port' || continue
		kill -TERM "$pid" 2>/dev/null
		for _ in $(seq 50); do
			alive "$pid" || break
			sleep 0.1
		done
		alive "$pid" && kill -KILL "$pid" 2>/dev/null
		wait "$pid" 2>/dev/null
	done
	STARTED=()
}

e2e_stop_own() { stop_started; }

now() { date +%s.%N; }
# secs A B: B - A with two decimals.
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b - a }'; }
# less A B: A < B (decimals).
less() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a + 0 < b + 0) }'; }

# notify_find NAME PID SINCE ERE: time of the first field from PID, after SINCE, matching ERE.
notify_find() {
	awk -v pid="$2" -v since="$3" -v re="$4" '{
		f = $0; sub(/^[^ ]+ [^ ]+ [^ ]+ /, "", f)
		if ($2 + 0 > since + 0 && $3 == pid && f ~ re) { print $2; exit }
	}' "$DIR/$1.notify"
}

# notify_wait NAME PID SINCE ERE TIMEOUT: as notify_find, waiting up to TIMEOUT seconds.
notify_wait() {
	local end t
	end=$(awk -v a="$(now)" -v b="$5" 'BEGIN { printf "%.3f", a + b }')
	while :; do
		t=$(notify_find "$1" "$2" "$3" "$4")
		[ -n "$t" ] && { echo "$t"; return 0; }
		less "$(now)" "$end" || return 1
		sleep 0.02
	done
}

# log_wait FILE FROM_LINE ERE TIMEOUT: waits until a line after FROM_LINE matches.
log_wait() {
	local end
	end=$(awk -v a="$(now)" -v b="$4" 'BEGIN { printf "%.3f", a + b }')
	while :; do
		tail -n +"$(($2 + 1))" "$1" 2>/dev/null | grep -qE -- "$3" && return 0
		less "$(now)" "$end" || return 1
		sleep 0.02
	done
}

lines() { wc -l <"$1"; }

# listen_start NAME: a notify socket $DIR/NAME.sock recording into $DIR/NAME.notify.
listen_start() {
	local pid
	rm -f "$DIR/$1.notify"
	"$PY" "$LISTEN" --socket "$DIR/$1.sock" --out "$DIR/$1.notify" --parent-pid $$ \
	    </dev/null >"$DIR/$1.listen.log" 2>&1 &
	pid=$!
	STARTED+=("$pid")
	for _ in $(seq 100); do
		[ -e "$DIR/$1.notify" ] && return 0
		sleep 0.05
	done
	return 1
}

# daemon_start NAME CONF [ARGS...]: ipcased as systemd would start it; sets DPID and T_START.
# WATCHDOG_PID must be the daemon's own pid: the subshell's pid, kept by exec.
# JOURNAL_STREAM names stderr's device and inode, as systemd sets it.
daemon_start() {
	local name="$1" conf="$2"
	shift 2
	listen_start "$name" || return 1
	: >"$DIR/$name.err"
	T_START=$(now)
	(
		export NOTIFY_SOCKET="$DIR/$name.sock" WATCHDOG_USEC=2000000
		JOURNAL_STREAM=$(stat -c '%d:%i' "$DIR/$name.err")
		export JOURNAL_STREAM
		export WATCHDOG_PID=$BASHPID
		exec "$IPCASED" -c "$conf" "$@"
	) </dev/null >"$DIR/$name.out" 2>>"$DIR/$name.err" &
	DPID=$!
	STARTED+=("$DPID")
}

# stop_measure SIGNAL: sends it to DPID, waits up to 3 x STOP_LIMIT; sets STOP_SECS, STOP_RC
# (STOP_RC 999 when it is still running) and STOP_T (when the signal went).
stop_measure() {
	local end t
	STOP_T=$(now)
	kill -"$1" "$DPID"
	end=$(awk -v a="$STOP_T" -v b="$STOP_LIMIT" 'BEGIN { printf "%.3f", a + 3 * b }')
	while alive "$DPID" && less "$(now)" "$end"; do
		sleep 0.01
	done
	t=$(now)
	STOP_SECS=$(secs "$STOP_T" "$t")
	if alive "$DPID"; then
		STOP_RC=999
		return
	fi
	wait "$DPID"
	STOP_RC=$?
}

children() { ps -o pid= --ppid "$1" 2>/dev/null | tr -d ' '; }

# ticks PID...: utime + stime (clock ticks) of the processes, summed.
ticks() {
	local p sum=0 t
	for p in "$@"; do
		t=$(sed 's/^.*) //' "/proc/$p/stat" 2>/dev/null | awk '{ print $12 + $13 }')
		sum=$((sum + ${t:-0}))
	done
	echo "$sum"
}

# check_config NAME CONF: --check-config, its output in $DIR/NAME.out and .err.
check_config() {
	"$IPCASED" -c "$2" --check-config >"$DIR/$1.out" 2>"$DIR/$1.err" </dev/null
}

e2e_require_built

e2e_servers_start --no-ok
e2e_config
cp "$CONF" "$DIR/one-account.conf"
mail_append "$DIR" INBOX tests/samples/s01_us_trademark_inauthentic_2asins.eml \
    tests/samples/s02_us_design_patent.eml >"$DIR/append.log" 2>&1 ||
    tap_bail "two notices delivered" "$DIR/append.log"
tap_ok 0 "private Dovecot (127.0.0.1:$IMAP_PORT) and SMTP (127.0.0.1:$SMTP_PORT) started, 2 notices in INBOX"

# ---------------------------------------------------------------------------
# Run A: the normal service.
daemon_start A "$CONF"
A=$DPID
t=$(notify_wait A "$A" 0 '^READY=1$' 10)
if [ -n "$t" ] && less "$(secs "$T_START" "$t")" "$READY_LIMIT"; then rc=0; else rc=1; fi
tap_ok "$rc" "READY=1 from the daemon's pid ${t:+$(secs "$T_START" "$t") s after exec} (limit $READY_LIMIT s)" \
    "$DIR/A.err"

# The first STATUS= comes at once; another follows the first sync.
first=$(awk '$3 == pid && $4 ~ /^STATUS=/ { sub(/^[^ ]+ [^ ]+ [^ ]+ /, ""); print; exit }' pid="$A" "$DIR/A.notify")
t=$(notify_wait A "$A" 0 '^STATUS=1 account \(shop: idle\), 2 open cases, next deadline ' 30)
rc=1
[ -n "$t" ] && case "$first" in "STATUS=1 account (shop: "*"), "*" open case"*) rc=0 ;; esac
synced=$(awk -v t="$t" '$2 == t && $4 ~ /^STATUS=/ { sub(/^[^ ]+ [^ ]+ [^ ]+ /, ""); print; exit }' "$DIR/A.notify")
tap_ok "$rc" "STATUS at start \"${first#STATUS=}\"; ${t:+$(secs "$T_START" "$t") s later} \"${synced#STATUS=}\"" \
    "$DIR/A.notify"
"$IPCASE" -c "$CONF" list --json >"$DIR/list.json" 2>"$DIR/list.err"
n=$("$PY" -c 'import json,sys; print(len(json.load(open(sys.argv[1]))))' "$DIR/list.json" 2>>"$DIR/list.err")
[ "$n" = 2 ] && rc=0 || rc=1
tap_ok "$rc" "ipcase list agrees: ${n:-?} open cases" "$DIR/list.err"

# Idle: 5 s in IDLE with the fetcher connected.  Watchdog pings and CPU over the same window.
kids=$(children "$A")
hz=$(getconf CLK_TCK)
w0=$(now)
c0=$(ticks "$A" $kids)
sleep 5
c1=$(ticks "$A" $kids)
w1=$(now)
n=$(awk -v a="$w0" -v b="$w1" -v pid="$A" '$3 == pid && $4 == "WATCHDOG=1" && $2 > a && $2 <= b' \
    "$DIR/A.notify" | wc -l)
# Longest time without a ping in the window (its edges count), and over the
# whole run so far: the loop does not turn while reminders go out over SMTP.
gap=$(awk -v a="$w0" -v b="$w1" -v pid="$A" '$3 == pid && $4 == "WATCHDOG=1" && $2 > a && $2 <= b {
	g = $2 - (last ? last : a); if (g > m) m = g; last = $2 }
    END { g = b - (last ? last : a); if (g > m) m = g; printf "%.2f", m }' "$DIR/A.notify")
runmax=$(awk -v pid="$A" '$3 == pid && $4 == "WATCHDOG=1" { if (last) { g = $2 - last; if (g > m) m = g } last = $2 }
    END { printf "%.2f", m }' "$DIR/A.notify")
[ "$n" -ge 3 ] && less "$gap" 2.0 && rc=0 || rc=1
tap_ok "$rc" "WATCHDOG=1 $n times in $(secs "$w0" "$w1") s idle (WATCHDOG_USEC 2 s), longest gap $gap s (since start, with the first sync and 11 reminders sent: $runmax s)" \
    "$DIR/A.notify"
cpu=$(awk -v t=$((c1 - c0)) -v hz="$hz" -v a="$w0" -v b="$w1" 'BEGIN { printf "%.2f", t / hz / (b - a) * 100 }')
[ -n "$kids" ] && less "$cpu" "$CPU_LIMIT" && rc=0 || rc=1
tap_ok "$rc" "CPU while idle: $((c1 - c0)) ticks in $(secs "$w0" "$w1") s = $cpu % for the daemon and its fetcher (${kids:-none}) (limit $CPU_LIMIT %)"

# SIGUSR1: one line per account, then the cases.
from=$(lines "$DIR/A.err")
t0=$(now)
kill -USR1 "$A"
log_wait "$DIR/A.err" "$from" 'open cases?, ' 5 &&
    tail -n +"$((from + 1))" "$DIR/A.err" | grep -qE '^<6>shop: idle, [0-9]+ messages this run \([0-9]+ fetched whole\), last full sync 20' &&
    rc=0 || rc=1
tap_ok "$rc" "SIGUSR1: \"$(tail -n +"$((from + 1))" "$DIR/A.err" | grep -m1 '^<6>shop:' | sed 's/^<6>//')\" in $(secs "$t0" "$(now)") s" \
    "$DIR/A.err"

# SIGHUP with a valid, changed config: a second account.
"$PY" - "$DIR/one-account.conf" "$CONF" <<'PY'
import re, sys
text = open(sys.argv[1]).read()
m = re.search(r"\n  \{ name = \"shop\";.*?\n  \}\n", text, re.S)
second = m.group(0).replace('name = "shop";', 'name = "shop2";').rstrip("\n")
open(sys.argv[2], "w").write(text[:m.end() - 1] + "," + second + "\n" + text[m.end():])
PY
"$IPCASED" -c "$CONF" --check-config >"$DIR/two.check" 2>&1 || tap_bail "the two-account config is valid" "$DIR/two.check"
from=$(lines "$DIR/A.err")
t0=$(now)
kill -HUP "$A"
tr=$(notify_wait A "$A" "$t0" '^RELOADING=1$' 5)
tready=$(notify_wait A "$A" "${tr:-$t0}" '^READY=1$' 5)
mono=$(awk -v t="$tr" '$2 == t && $4 ~ /^MONOTONIC_USEC=[0-9]+$/' "$DIR/A.notify")
log_wait "$DIR/A.err" "$from" '^<6>configuration reloaded: 2 accounts$' 5 && [ -n "$tr" ] && [ -n "$tready" ] &&
    [ -n "$mono" ] && alive "$A" && rc=0 || rc=1
tap_ok "$rc" "SIGHUP, valid config with a 2nd account: RELOADING=1 (+MONOTONIC_USEC) after ${tr:+$(secs "$t0" "$tr")} s, READY=1 after ${tready:+$(secs "$t0" "$tready")} s, \"configuration reloaded: 2 accounts\"" \
    "$DIR/A.err"
cp "$CONF" "$DIR/two-accounts.conf"

# SIGHUP with a broken config: an unknown key on a known line.
awk 'NR == 3 { print "poll_intervall = 60;" } { print }' "$DIR/two-accounts.conf" >"$CONF"
bad_line=$(grep -n '^poll_intervall' "$CONF" | cut -d: -f1)
from=$(lines "$DIR/A.err")
t0=$(now)
kill -HUP "$A"
tr=$(notify_wait A "$A" "$t0" '^RELOADING=1$' 5)
tready=$(notify_wait A "$A" "${tr:-$t0}" '^READY=1$' 5)
log_wait "$DIR/A.err" "$from" 'reload refused' 5
tail -n +"$((from + 1))" "$DIR/A.err" >"$DIR/A.badreload"
grep -qF "$CONF:$bad_line: " "$DIR/A.badreload" && grep -q 'poll_intervall' "$DIR/A.badreload" &&
    grep -q 'stays in force' "$DIR/A.badreload" && [ -n "$tr" ] && [ -n "$tready" ] && rc=0 || rc=1
tap_ok "$rc" "SIGHUP, unknown key on line $bad_line: \"$(grep -m1 -F "$CONF:" "$DIR/A.badreload" | sed "s|$DIR/||")\"; RELOADING=1, READY=1 again" \
    "$DIR/A.badreload"
sleep 0.5
from=$(lines "$DIR/A.err")
t0=$(now)
kill -USR1 "$A"
log_wait "$DIR/A.err" "$from" 'open cases?, ' 5
tail -n +"$((from + 1))" "$DIR/A.err" >"$DIR/A.usr1"
alive "$A" && grep -qE '^<6>shop: [a-z ]+, ' "$DIR/A.usr1" && grep -qE '^<6>shop2: [a-z ]+, ' "$DIR/A.usr1" &&
    rc=0 || rc=1
tap_ok "$rc" "after the refused reload it still runs the 2-account config: SIGUSR1 answered in $(secs "$t0" "$(now)") s for shop and shop2" \
    "$DIR/A.usr1"
cp "$DIR/two-accounts.conf" "$CONF"

# Under journald every line carries a priority, except the configuration
# errors conf.c writes itself (file:line at the start of the line, as
# --check-config prints them) and their count.
grep -vE '^<[0-7]>' "$DIR/A.err" | grep -vF "$CONF:" | grep -vE '^[0-9]+ errors?; ' >"$DIR/A.noprefix"
[ ! -s "$DIR/A.noprefix" ] && rc=0 || rc=1
tap_ok "$rc" "journald: $(grep -cE '^<[0-7]>' "$DIR/A.err") stderr lines with a <N> priority ($(grep -oE '^<[0-7]>' "$DIR/A.err" | sort | uniq -c | awk '{ printf "%s%s x%s", s, $2, $1; s = ", " }')), $(lines "$DIR/A.noprefix") without" \
    "$DIR/A.noprefix"

# SIGTERM in IDLE, both fetchers connected.
t=$(notify_wait A "$A" 0 '^STATUS=2 accounts \(shop: idle; shop2: idle\)' 30)
kids=$(children "$A")
nkids=$(echo $kids | wc -w)
if [ -z "$t" ] || [ "$nkids" -ne 2 ]; then
	tap_ok 1 "both accounts in IDLE before SIGTERM (fetchers: $nkids)" "$DIR/A.notify"
fi
stop_measure TERM
ts=$(notify_find A "$A" "$STOP_T" '^STOPPING=1$')
left=""
for k in $kids; do alive "$k" && left="$left $k"; done
[ "$STOP_RC" -eq 0 ] && less "$STOP_SECS" "$STOP_LIMIT" && [ -n "$ts" ] && [ -z "$left" ] && rc=0 || rc=1
tap_ok "$rc" "SIGTERM in IDLE: STOPPING=1 ${ts:+after $(secs "$STOP_T" "$ts") s}, exited $STOP_RC in $STOP_SECS s (limit $STOP_LIMIT s), $nkids fetchers gone${left:+ except$left}" \
    "$DIR/A.err"
other=$(awk -v pid="$A" '$3 != pid' "$DIR/A.notify" | wc -l)
[ "$other" -eq 0 ] && rc=0 || rc=1
tap_ok "$rc" "all $(lines "$DIR/A.notify") notify fields came from the main pid (NotifyAccess=main), $other from others" \
    "$DIR/A.notify"

# ---------------------------------------------------------------------------
# Run B: the IMAP server unreachable (a port nobody listens on).
closed=$(_srv_free_port)
sed "s/port = $IMAP_PORT;/port = $closed;/" "$DIR/one-account.conf" >"$DIR/down.conf"
daemon_start B "$DIR/down.conf" -v
B=$DPID
t=$(notify_wait B "$B" 0 '^READY=1$' 10)
if [ -n "$t" ] && less "$(secs "$T_START" "$t")" "$READY_LIMIT"; then rc=0; else rc=1; fi
tap_ok "$rc" "IMAP unreachable (127.0.0.1:$closed): READY=1 anyway ${t:+$(secs "$T_START" "$t") s after exec}" \
    "$DIR/B.err"
sleep 10
warn=$(grep -cE '^<[0-4]>' "$DIR/B.err")
shopwarn=$(grep -cE '^<[0-4]>shop: .*retrying with back-off' "$DIR/B.err")
retries=$(grep -cE '^<7>shop: .*\(failure [0-9]+\)' "$DIR/B.err")
[ "$warn" -eq 1 ] && [ "$shopwarn" -eq 1 ] && [ "$retries" -ge 2 ] && [ "$retries" -le 6 ] && alive "$B" &&
    rc=0 || rc=1
tap_ok "$rc" "10 s unreachable: $((retries + 1)) failed connections, $warn warning line (\"$(grep -m1 -E '^<4>shop: ' "$DIR/B.err" | sed 's/^<4>//')\"), still running" \
    "$DIR/B.err"
stop_measure INT
ts=$(notify_find B "$B" "$STOP_T" '^STOPPING=1$')
[ "$STOP_RC" -eq 0 ] && less "$STOP_SECS" "$STOP_LIMIT" && [ -n "$ts" ] && rc=0 || rc=1
tap_ok "$rc" "SIGINT in back-off: STOPPING=1, exited $STOP_RC in $STOP_SECS s" "$DIR/B.err"

# ---------------------------------------------------------------------------
# Run C: --foreground (plain lines even with JOURNAL_STREAM set), stopped by SIGINT in IDLE.
daemon_start C "$CONF" --foreground
C=$DPID
t=$(notify_wait C "$C" 0 '^STATUS=2 accounts \(shop: idle; shop2: idle\)' 30)
[ -n "$t" ] || tap_ok 1 "--foreground: both accounts in IDLE" "$DIR/C.err"
grep -E '^<[0-7]>' "$DIR/C.err" >"$DIR/C.prefixed"
[ ! -s "$DIR/C.prefixed" ] && [ "$(grep -c '^ipcased: ' "$DIR/C.err")" -eq "$(lines "$DIR/C.err")" ] &&
    grep -q '^ipcased: shop2: connected' "$DIR/C.err" && rc=0 || rc=1
tap_ok "$rc" "--foreground: $(grep -c '^ipcased: ' "$DIR/C.err") of $(lines "$DIR/C.err") lines plain \"ipcased: ...\", $(lines "$DIR/C.prefixed") with a <N> prefix" \
    "$DIR/C.prefixed"
stop_measure INT
ts=$(notify_find C "$C" "$STOP_T" '^STOPPING=1$')
[ "$STOP_RC" -eq 0 ] && less "$STOP_SECS" "$STOP_LIMIT" && [ -n "$ts" ] && rc=0 || rc=1
tap_ok "$rc" "SIGINT in IDLE: STOPPING=1, exited $STOP_RC in $STOP_SECS s" "$DIR/C.err"

# ---------------------------------------------------------------------------
# Run E: SIGTERM in the middle of a first sync of 3000 messages.  Each batch
# of headers is one transaction with the folder's "last UID": what was in
# flight is rolled back, so the saved progress is a batch boundary and the
# next run goes on from there.
BULK=3000
doveadm -c "$DOVECOT_CONF" mailbox create -u "$MAIL_USER" Bulk >"$DIR/bulk.log" 2>&1 &&
"$PY" - "$DIR/mail/$MAIL_USER/Maildir/.Bulk/new" tests/samples/s23_newsletter.eml "$BULK" <<'PY' &&
import os, sys
folder, text, n = sys.argv[1], open(sys.argv[2], "rb").read(), int(sys.argv[3])
for i in range(n):
    with open(os.path.join(folder, "%d.bulk%d.ipcased-test" % (1700000000 + i, i)), "wb") as f:
        f.write(text.replace(b"<mm-2024-10-14.ops@", b"<mm-%d.ops@" % i))
PY
chown -R --reference="$DIR/mail/$MAIL_USER/Maildir" "$DIR/mail/$MAIL_USER/Maildir/.Bulk" 2>>"$DIR/bulk.log" ||
    tap_bail "$BULK messages put into the folder Bulk" "$DIR/bulk.log"
sed -e 's/folders = \[ "INBOX" \];/folders = [ "Bulk" ];/' -e 's/^state = "state.db";/state = "bulk.db";/' \
    "$DIR/one-account.conf" >"$DIR/bulk.conf"
# last_uid PHASE: the saved progress of Bulk; "wait" polls until a first batch is saved.
last_uid() {
	"$PY" - "$DIR/bulk.db" "$1" <<'PY'
import sqlite3, sys, time
db, phase = sys.argv[1], sys.argv[2]
end = time.time() + 30
while True:
    try:
        c = sqlite3.connect("file:%s?mode=ro" % db, uri=True, timeout=5)
        row = c.execute("SELECT last_uid FROM folders WHERE folder = 'Bulk'").fetchone()
        ok = c.execute("PRAGMA integrity_check").fetchone()[0]
        c.close()
    except sqlite3.Error:
        row, ok = None, "no database yet"
    if phase != "wait" or (row and row[0] > 0) or time.time() > end:
        print(row[0] if row else 0, ok)
        break
    time.sleep(0.01)
PY
}
daemon_start E "$DIR/bulk.conf"
read -r uid_seen _ < <(last_uid wait)
stop_measure TERM
read -r uid_saved integrity < <(last_uid now)
[ "$STOP_RC" -eq 0 ] && less "$STOP_SECS" "$STOP_LIMIT" && [ "$integrity" = ok ] &&
    [ "$uid_saved" -gt 0 ] && [ "$uid_saved" -lt "$BULK" ] && [ $((uid_saved % 500)) -eq 0 ] && rc=0 || rc=1
tap_ok "$rc" "SIGTERM during a first sync of $BULK messages (first batch saved: UID $uid_seen): exited $STOP_RC in $STOP_SECS s, progress saved at UID $uid_saved (a batch boundary), integrity_check $integrity" \
    "$DIR/E.err"
timeout 120 "$IPCASED" -c "$DIR/bulk.conf" --once --foreground >"$DIR/E2.out" 2>"$DIR/E2.err" </dev/null
rc=$?
read -r uid_end integrity < <(last_uid now)
[ "$rc" -eq 0 ] && [ "$uid_end" -eq "$BULK" ] && [ "$integrity" = ok ] && r=0 || r=1
tap_ok "$r" "the next run (--once, exit $rc) went on from UID $uid_saved to $uid_end" "$DIR/E2.err"

# ---------------------------------------------------------------------------
# Run F: SIGTERM while a reminder goes to an SMTP server that accepts and
# then says nothing (a hung relay).  The stop must not wait for the SMTP
# timeouts, and the reminders that did not go stay pending.
"$PY" - "$DIR/silent.port" "$DIR/silent.accepts" $$ <<'PY' >"$DIR/silent.log" 2>&1 &
import os, select, socket, sys
port_file, accepts, parent = sys.argv[1], sys.argv[2], int(sys.argv[3])
s = socket.socket()
s.bind(("127.0.0.1", 0))
s.listen(16)
open(port_file + ".tmp", "w").write("%d\n" % s.getsockname()[1])
os.rename(port_file + ".tmp", port_file)
held = []
while os.path.exists("/proc/%d" % parent):
    if select.select([s], [], [], 0.5)[0]:
        held.append(s.accept()[0])
        with open(accepts, "a") as f:
            f.write("accepted\n")
PY
STARTED+=("$!")
for _ in $(seq 100); do
	[ -s "$DIR/silent.port" ] && break
	sleep 0.05
done
silent=$(cat "$DIR/silent.port" 2>/dev/null)
sed -e "s|smtp://127.0.0.1:$SMTP_PORT|smtp://127.0.0.1:${silent:-1}|" -e 's/^state = "state.db";/state = "silent.db";/' \
    "$DIR/one-account.conf" >"$DIR/silent.conf"
daemon_start F "$DIR/silent.conf"
F=$DPID
for _ in $(seq 600); do
	[ -s "$DIR/silent.accepts" ] && break
	sleep 0.05
done
[ -s "$DIR/silent.accepts" ] || tap_ok 1 "ipcased connected to the silent SMTP server" "$DIR/F.err"
sleep 0.5
stop_measure TERM
ts=$(notify_find F "$F" "$STOP_T" '^STOPPING=1$')
pending=$("$PY" -c 'import sqlite3, sys
c = sqlite3.connect("file:%s?mode=ro" % sys.argv[1], uri=True)
print(*c.execute("SELECT count(*) FILTER (WHERE status = \x27pending\x27), count(*) FILTER (WHERE status = \x27sent\x27) FROM outbox").fetchone())' \
    "$DIR/silent.db" 2>>"$DIR/F.err")
read -r npending nsent <<<"${pending:-0 -1}"
[ "$STOP_RC" -eq 0 ] && less "$STOP_SECS" "$STOP_LIMIT" && [ -n "$ts" ] && [ "$npending" -gt 0 ] &&
    [ "$nsent" -eq 0 ] &&
    rc=0 || rc=1
tap_ok "$rc" "SIGTERM while the SMTP server stays silent: exited $STOP_RC in $STOP_SECS s (limit $STOP_LIMIT s), $npending reminders still pending, $nsent sent" \
    "$DIR/F.err"

# ---------------------------------------------------------------------------
# Secrets.
sed "s|password_file = \"imap.pass\";|password = \"$MAIL_PASS\";|" "$DIR/one-account.conf" >"$DIR/inline.conf"
chmod 644 "$DIR/inline.conf"
check_config inline644 "$DIR/inline.conf"
rc=$?
[ "$rc" -eq 2 ] && grep -qF "$DIR/inline.conf:" "$DIR/inline644.err" &&
    grep -qF "chmod 600 $DIR/inline.conf" "$DIR/inline644.err" && r=0 || r=1
tap_ok "$r" "inline password, config mode 0644: --check-config exits $rc: \"$(grep -m1 -F 'chmod 600' "$DIR/inline644.err" | sed "s|$DIR/||g")\"" \
    "$DIR/inline644.err"
chmod 600 "$DIR/inline.conf"
check_config inline600 "$DIR/inline.conf"
rc=$?
tap_ok "$rc" "inline password, config mode 0600: --check-config exits $rc" "$DIR/inline600.err"

cp "$DIR/imap.pass" "$DIR/imap644.pass"
chmod 644 "$DIR/imap644.pass"
sed 's|password_file = "imap.pass";|password_file = "imap644.pass";|' "$DIR/one-account.conf" >"$DIR/pf644.conf"
check_config pf644 "$DIR/pf644.conf"
rc=$?
[ "$rc" -eq 2 ] && grep -qF "$DIR/imap644.pass" "$DIR/pf644.err" &&
    grep -qF "chmod 600 $DIR/imap644.pass" "$DIR/pf644.err" && r=0 || r=1
tap_ok "$r" "password_file mode 0644: --check-config exits $rc: \"$(grep -m1 -F 'chmod 600' "$DIR/pf644.err" | sed "s|$DIR/||g")\"" \
    "$DIR/pf644.err"
daemon_start D "$DIR/pf644.conf"
D=$DPID
for _ in $(seq 100); do
	alive "$D" || break
	sleep 0.05
done
alive "$D" && kill -TERM "$D"
wait "$D"
rc=$?
[ "$rc" -eq 2 ] && ! grep -q 'READY=1' "$DIR/D.notify" && grep -qF "chmod 600" "$DIR/D.err" && r=0 || r=1
tap_ok "$r" "password_file mode 0644: the daemon does not start (exit $rc, no READY=1)" "$DIR/D.err"

stop_started
: >"$DIR/leaks"
for f in "$DIR"/*.err "$DIR"/*.out "$DIR"/*.notify "$DIR"/*.check "$DIR"/A.*; do
	[ -f "$f" ] || continue
	grep -lF -e "$MAIL_PASS" -e "$SMTP_PASS" "$f" >>"$DIR/leaks"
done
nfiles=$(ls "$DIR"/*.err "$DIR"/*.out "$DIR"/*.notify | wc -l)
[ ! -s "$DIR/leaks" ] && rc=0 || rc=1
tap_ok "$rc" "neither password appears in the $nfiles logs, outputs and notify records of this test" "$DIR/leaks"

tap_done
