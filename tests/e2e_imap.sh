#!/bin/bash
# e2e_imap.sh — the IMAP side under faults, against the real private Dovecot: a crashing server beside a good one, IDLE latency, a Dovecot restart mid-scan, a UIDVALIDITY reset, XOAUTH2 with a local IdP (rotation, revocation, one alert), no flag changed.
#
# 1. Two accounts in one daemon: "shop" (Dovecot) and "hostile" (tests/imap_fake.py
#    permflags over implicit TLS with a certificate of the test CA: libetpan dies
#    parsing the greeting).  The hostile fetcher is restarted with growing
#    back-off, the crash is logged once, the daemon lives, shop keeps working.
# 2. IDLE: a notice saved into the INBOX becomes a case within IDLE_LIMIT_MS.
# 3. 300 messages, 30 of them notices; Dovecot is stopped (sessions too) while
#    the daemon scans and started again: 30 cases, no duplicate, one log line.
# 4. UIDVALIDITY reset (uidlist and indexes deleted): rescan, nothing doubled,
#    its dense UIDs fetched in ranges with no SEARCH.  4b: sparse UIDs (from
#    100000): SEARCH first, then one new UID fetched as a range.
# 5. XOAUTH2 through tests/lib/idp.py: login, rotation kept (0600) and used,
#    revoked grant -> exit 1, a clear log line, ONE alert mail over two runs.
# 6. No message gained or lost a flag.
# Knobs to see a check fail: IDLE_LIMIT_MS=1, CRASH_RUN_SEC=2.  KEEP=1 keeps DIR.
set -u
cd "$(dirname "$0")/.." || exit 1
. tests/lib/tap.sh
. tests/lib/servers.sh
. tests/lib/e2e.sh
# The hostile server crashes libetpan in the fetcher on purpose: under a
# sanitizer build the crash must stay a real SIGSEGV (what the daemon reports
# and restarts), not an ASan report and an exit code.
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}handle_segv=0"

SAMPLES=tests/samples
IDLE_LIMIT_MS=${IDLE_LIMIT_MS:-2000}
CRASH_RUN_SEC=${CRASH_RUN_SEC:-15}
N_MESSAGES=300
N_NOTICES=30

e2e_init e2ei
DAEMON_PID=
FAKE_PID=
WATCH_PID=
IDP_PID=

# Ends one of our background processes by its pid, TERM then KILL.
stop_pid() {
	local pid="$1" i
	[ -n "$pid" ] || return 0
	kill -CONT "$pid" 2>/dev/null
	kill -TERM "$pid" 2>/dev/null || return 0
	for i in $(seq 50); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	kill -KILL "$pid" 2>/dev/null
	wait "$pid" 2>/dev/null
	return 0
}

e2e_stop_own() {
	stop_pid "$DAEMON_PID"
	stop_pid "$WATCH_PID"
	stop_pid "$FAKE_PID"
	stop_pid "$IDP_PID"
}

now_ms() { date +%s%3N; }

# wait_until SECONDS CMD...: polls CMD every 50 ms; 0 when it succeeded in time.
wait_until() {
	local end=$(($(now_ms) + $1 * 1000))
	shift
	while [ "$(now_ms)" -lt "$end" ]; do
		"$@" && return 0
		sleep 0.05
	done
	"$@"
}

# The complaint ids of the cases in a state (ipcase list --all --json), one a line, sorted.
complaint_ids() {
	"$IPCASE" -c "$1" list --all --json 2>/dev/null | "$PY" -c '
import json, sys
for c in json.load(sys.stdin):
    for cid in c.get("complaint_ids") or ([c["complaint_id"]] if c.get("complaint_id") else []):
        print(cid)' | sort
}

has_case() {
	"$IPCASE" -c "$1" list --json 2>/dev/null | grep -q "\"$2\""
}

# "message-id flags" per INBOX message, flags sorted, \Recent left out: stable across
# a UIDVALIDITY reset, which renumbers the UIDs mail_flags reports.
flags_by_msgid() {
	doveadm -c "$DOVECOT_CONF" -f tab fetch -u seller 'hdr.message-id flags' mailbox INBOX all |
	    "$PY" -c '
import sys
for line in sys.stdin.read().splitlines()[1:]:
    if line.strip():
        mid, _, flags = line.partition("\t")
        print(mid, " ".join(sorted(f for f in flags.split() if f != "\\Recent")))' | sort
}

# conf FILE STATE ACCOUNT-BLOCK...: a config for the private servers.
conf() {
	local file="$1" state="$2"
	shift 2
	{
		printf '%s\n' "# e2e_imap.sh" "state = \"$state\";" "poll_interval = 60;" "accounts = ("
		local first=1 a
		for a in "$@"; do
			[ "$first" -eq 1 ] || echo ","
			first=0
			printf '%s\n' "$a"
		done
		cat <<EOF
);
smtp = {
  url = "smtp://127.0.0.1:$SMTP_PORT";
  user = "$SMTP_USER"; password_file = "smtp.pass"; ca_file = "tls/ca.pem";
  from = "ipcased@shop.example";
  to = [ "ops@shop.example" ];
  timeout = 20;
};
# Few reminders: sending blocks the daemon's loop, and this test is about IMAP.
reminders = { before = [ "1h" ]; overdue_max = 0; max_per_hour = 10000; quiet_hours = "";
  digest_hour = -1; timezone = "UTC"; };
@include "rules.conf"
EOF
	} >"$DIR/$file"
}

acct_password() {	# NAME PORT
	cat <<EOF
  { name = "$1"; host = "127.0.0.1"; port = $2; tls = "implicit"; user = "$MAIL_USER";
    auth = "login"; password_file = "imap.pass"; ca_file = "tls/ca.pem";
    folders = [ "INBOX" ]; sent_folder = "Sent"; timeout = 20;
    authserv_ids = [ "mx.seller-mail.example" ]; }
EOF
}

acct_oauth() {		# NAME
	cat <<EOF
  { name = "$1"; host = "127.0.0.1"; port = $IMAP_PORT; tls = "implicit"; user = "$MAIL_USER";
    auth = "xoauth2"; oauth_token_url = "http://127.0.0.1:$IDP_PORT/token";
    oauth_client_id = "ipcased-test"; oauth_refresh_token_file = "oauth.refresh";
    ca_file = "tls/ca.pem"; folders = [ "INBOX" ]; sent_folder = "Sent"; timeout = 20;
    authserv_ids = [ "mx.seller-mail.example" ]; }
EOF
}

e2e_require_built
command -v sqlite3 >/dev/null || tap_bail "the sqlite3 CLI is installed"

# ---- servers: the IdP first, since Dovecot's oauth2 passdb points at it ----
mkdir -p "$DIR/idp" "$DIR/fake"
(umask 077; echo "rt0-$(openssl rand -hex 16)" >"$DIR/oauth.refresh")
"$PY" tests/lib/idp.py --port-file "$DIR/idp/port" --log "$DIR/idp/requests.jsonl" \
    --refresh-file "$DIR/oauth.refresh" --revoke-file "$DIR/idp/revoked" \
    --client-id ipcased-test --user seller --parent-pid $$ </dev/null >"$DIR/idp/out.log" 2>&1 &
IDP_PID=$!
wait_until 5 test -s "$DIR/idp/port" || tap_bail "the IdP started" "$DIR/idp/out.log"
IDP_PORT=$(cat "$DIR/idp/port")
SERVERS_DOVECOT_OAUTH="http://127.0.0.1:$IDP_PORT/introspect" servers_start "$DIR" >"$DIR/servers.log" 2>&1 ||
    tap_bail "private Dovecot and SMTP server start" "$DIR/servers.log"
cp conf/rules.conf "$DIR/rules.conf"
chmod 600 "$DIR/imap.pass" "$DIR/smtp.pass"
MAILDIR=$DIR/mail/$MAIL_USER/Maildir

"$PY" tests/imap_fake.py --mode permflags --tls implicit --cert "$DIR/tls/server.pem" \
    --key "$DIR/tls/server.key" --log "$DIR/fake/conn.log" --port-file "$DIR/fake/port" \
    </dev/null >"$DIR/fake/out.log" 2>&1 &
FAKE_PID=$!
wait_until 5 test -s "$DIR/fake/port" || tap_bail "the hostile fake server started" "$DIR/fake/out.log"
FAKE_PORT=$(cat "$DIR/fake/port")
tap_ok 0 "Dovecot (imaps 127.0.0.1:$IMAP_PORT, XOAUTH2 via IdP :$IDP_PORT), SMTP :$SMTP_PORT, hostile fake :$FAKE_PORT started"

# The fake logs connections without times: a watcher stamps each one.
"$PY" - "$DIR/fake/conn.log" "$DIR/fake/connects" <<'PY' &
import sys, time
src, dst = sys.argv[1], sys.argv[2]
seen = 0
while True:
    try:
        with open(src, encoding="utf-8", errors="replace") as f:
            n = sum(1 for line in f if line.strip() == "CONNECT")
    except OSError:
        n = 0
    if n > seen:
        with open(dst, "a") as f:
            for _ in range(n - seen):
                f.write("%.3f\n" % time.time())
        seen = n
    time.sleep(0.01)
PY
WATCH_PID=$!

# ---- 1 + 2: a crashing account beside a working one; IDLE latency ----
# The samples dated now: no reminder is due, so no SMTP session holds up the
# daemon's loop and the restarts show the back-off alone.
mkdir -p "$DIR/fresh"
"$PY" - "$DIR/fresh" "$SAMPLES"/s0[123]_*.eml <<'PY'
import email.utils, os, re, sys
now = email.utils.formatdate(usegmt=True).encode()
for path in sys.argv[2:]:
    with open(path, "rb") as f:
        m = re.sub(rb"^Date: [^\r\n]*", b"Date: " + now, f.read(), count=1, flags=re.M)
    with open(os.path.join(sys.argv[1], os.path.basename(path)), "wb") as f:
        f.write(m)
PY
mail_append "$DIR" INBOX "$DIR/fresh/s01_us_trademark_inauthentic_2asins.eml" >>"$DIR/append.log" 2>&1
doveadm -c "$DOVECOT_CONF" flags add -u seller '\Seen $Work' mailbox INBOX all >>"$DIR/append.log" 2>&1
conf t1.conf s1.db "$(acct_password shop "$IMAP_PORT")" "$(acct_password hostile "$FAKE_PORT")"
"$IPCASED" -c "$DIR/t1.conf" --check-config >"$DIR/t1.check" 2>&1 ||
    tap_bail "the two-account config is valid" "$DIR/t1.check"

t1_start=$(now_ms)
"$IPCASED" -c "$DIR/t1.conf" --foreground </dev/null >"$DIR/t1.log" 2>&1 &
DAEMON_PID=$!

# SIGUSR1 (status to the log) kills a daemon that has not set up its signals yet.
wait_until 10 grep -q 'started:' "$DIR/t1.log"
shop_idle() {
	kill -USR1 "$DAEMON_PID" 2>/dev/null || return 1
	sleep 0.1
	grep -q 'shop: idle' "$DIR/t1.log"
}
wait_until 15 shop_idle && wait_until 10 has_case "$DIR/t1.conf" 12904418236
rc=$?
tap_ok "$rc" "shop synced and idle ($(($(now_ms) - t1_start)) ms after start) while hostile crashes" "$DIR/t1.log"

# 2: each notice's latency from `doveadm save` to `ipcase list --json`.
idle_max=0
idle_figs=""
rc=0
for s in s02_us_design_patent.eml:15402917763 s03_in_copyright_packaging.eml:10084563327; do
	file=${s%%:*}
	cid=${s##*:}
	sleep 1
	t0=$(now_ms)
	mail_append "$DIR" INBOX "$DIR/fresh/$file" >>"$DIR/append.log" 2>&1
	if wait_until 10 has_case "$DIR/t1.conf" "$cid"; then
		lat=$(($(now_ms) - t0))
	else
		lat=99999
	fi
	idle_figs="$idle_figs ${lat}"
	[ "$lat" -gt "$idle_max" ] && idle_max=$lat
done
[ "$idle_max" -lt "$IDLE_LIMIT_MS" ] || rc=1
tap_ok "$rc" "IDLE: notice saved -> case listed in${idle_figs% } ms (limit $IDLE_LIMIT_MS ms)" "$DIR/t1.log"

# Let the hostile account crash on for the rest of the run.
while [ $(($(now_ms) - t1_start)) -lt $((CRASH_RUN_SEC * 1000)) ]; do
	sleep 0.2
done
alive=0
kill -0 "$DAEMON_PID" 2>/dev/null && alive=1
stop_pid "$DAEMON_PID"
wait "$DAEMON_PID" 2>/dev/null
DAEMON_PID=
stop_pid "$WATCH_PID"
WATCH_PID=

# Connection times -> restarts and their spacing.
read -r n_conn gaps increasing <<<"$("$PY" - "$DIR/fake/connects" <<'PY'
import sys
t = [float(x) for x in open(sys.argv[1]).read().split()] if len(sys.argv) > 1 else []
gaps = [b - a for a, b in zip(t, t[1:])]
# Back-off doubles (+-20 % jitter): every gap clearly longer than the one before.
inc = len(gaps) >= 3 and all(b > a * 1.25 for a, b in zip(gaps, gaps[1:]))
print(len(t), ",".join("%.1f" % g for g in gaps) or "-", 1 if inc else 0)
PY
)"
crash_lines=$(grep -c 'hostile: fetcher killed by signal' "$DIR/t1.log")
rc=0
[ "$alive" -eq 1 ] && [ "$n_conn" -ge 4 ] && [ "$increasing" -eq 1 ] || rc=1
tap_ok "$rc" "hostile: $n_conn connections in ${CRASH_RUN_SEC} s, restarts after $gaps s (growing back-off); daemon alive: $alive" "$DIR/t1.log"
rc=0
[ "$crash_lines" -eq 1 ] && grep -q 'killed by signal 11' "$DIR/t1.log" || rc=1
tap_ok "$rc" "the crash (SIGSEGV in the fetcher) logged $crash_lines time(s) for $((n_conn)) crashes" "$DIR/t1.log"
rc=0
for cid in 12904418236 15402917763 10084563327; do
	complaint_ids "$DIR/t1.conf" | grep -qx "$cid" || rc=1
done
grep -q 'shop: .*\(retrying\|killed\|giving up\)' "$DIR/t1.log" && rc=1
tap_ok "$rc" "shop kept working beside the crashing account: 3 notices -> 3 cases, no shop failure" "$DIR/t1.log"

# ---- 3: Dovecot stopped and started in the middle of a scan ----
"$PY" - "$SAMPLES" "$DIR/gen" "$N_MESSAGES" "$N_NOTICES" >"$DIR/gen.ids" <<'PY'
import email.utils, os, re, sys
samples, out, n_total, n_notices = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
def rd(name):
    with open(os.path.join(samples, name), "rb") as f:
        return f.read()
notice = rd("s01_us_trademark_inauthentic_2asins.eml")
fillers = [rd(n) for n in ("s21_uk_sold_dispatch_now.eml", "s22_us_payout.eml",
                           "s23_newsletter.eml", "s25_personal_es.eml")]
mid = re.compile(rb"^Message-ID: <[^>]*>", re.M | re.I)
date = re.compile(rb"^Date: [^\r\n]*", re.M)
# Dated now: the deadlines lie ahead, so no reminder is due yet.
now = email.utils.formatdate(usegmt=True).encode()
step = n_total // n_notices
os.makedirs(out, exist_ok=True)
ids = []
for i in range(n_total):
    if i % step == step // 2 and len(ids) < n_notices:
        k = len(ids)
        cid = "%011d" % (30000000000 + 7919 * k)     # same length: QP lines stay valid
        m = notice.replace(b"12904418236", cid.encode())
        m = m.replace(b"B0CR3M8W5T", b"B0X%07d" % k).replace(b"B0CR3P2KXD", b"B0Y%07d" % k)
        m = mid.sub(b"Message-ID: <e2e-notice-%d@email.amazonses.com>" % k, m, count=1)
        m = date.sub(b"Date: " + now, m, count=1)
        ids.append(cid)
    else:
        m = mid.sub(b"Message-ID: <e2e-filler-%d@example.net>" % i, fillers[i % len(fillers)], count=1)
    with open(os.path.join(out, "%03d.eml" % i), "wb") as f:
        f.write(m)
print("\n".join(ids))
PY
i=0
for f in "$DIR"/gen/*.eml; do
	i=$((i + 1))
	cp "$f" "$MAILDIR/new/$(date +%s).M${i}P$$.e2e-imap"
done
chown -R --reference="$MAILDIR" "$MAILDIR/new"
doveadm -c "$DOVECOT_CONF" force-resync -u seller INBOX >>"$DIR/append.log" 2>&1
# Flags the daemon must leave alone: seen, flagged, answered and a keyword.
doveadm -c "$DOVECOT_CONF" flags add -u seller '\Seen' mailbox INBOX uid 40:200 >>"$DIR/append.log" 2>&1
doveadm -c "$DOVECOT_CONF" flags add -u seller '\Flagged' mailbox INBOX uid 10:60 >>"$DIR/append.log" 2>&1
doveadm -c "$DOVECOT_CONF" flags add -u seller '\Answered $Label1' mailbox INBOX uid 100:130 >>"$DIR/append.log" 2>&1
flags_by_msgid >"$DIR/flags.before"
n_inbox=$(wc -l <"$DIR/flags.before")
rc=0
[ "$(wc -l <"$DIR/gen.ids")" -eq "$N_NOTICES" ] && [ "$n_inbox" -eq $((N_MESSAGES + 3)) ] || rc=1
tap_ok "$rc" "INBOX loaded: $n_inbox messages, $N_NOTICES generated notices with distinct complaint ids, $(grep -c ' .' "$DIR/flags.before") flagged" "$DIR/append.log"

conf t3.conf s3.db "$(acct_password shop "$IMAP_PORT")"
# A watcher stops the daemon the moment it has logged in, so that Dovecot goes
# down while the fetcher is inside its scan (headers fetched, bodies not yet).
rm -f "$DIR/t3.pid"
"$PY" - "$DIR/t3.log" "$DIR/t3.pid" >"$DIR/t3.stopped" 2>&1 <<'PY' &
import os, signal, sys, time
log, pidfile = sys.argv[1], sys.argv[2]
open(pidfile + ".ready", "w").close()
end = time.time() + 30
pid = None
while time.time() < end:
    if pid is None:
        try:
            pid = int(open(pidfile).read())
        except (OSError, ValueError):
            time.sleep(0.002)
            continue
    try:
        data = open(log, errors="replace").read()
    except OSError:
        data = ""
    if "shop: connected" in data:
        os.kill(pid, signal.SIGSTOP)
        print("stopped")
        sys.exit(0)
    time.sleep(0.001)
sys.exit(1)
PY
stopper=$!
wait_until 5 test -e "$DIR/t3.pid.ready"
"$IPCASED" -c "$DIR/t3.conf" --foreground </dev/null >"$DIR/t3.log" 2>&1 &
DAEMON_PID=$!
echo "$DAEMON_PID" >"$DIR/t3.pid"
wait "$stopper"
stopped=$?
# The fetcher now works on alone until the frames it sends fill the socket.
sleep 0.7
fetcher=$(pgrep -P "$DAEMON_PID" -x ipcased-fetch | head -n 1)
fetcher_wchan=$(cat "/proc/$fetcher/wchan" 2>/dev/null || echo "?")
committed=$(sqlite3 "$DIR/s3.db" "SELECT count(*) FROM cases" 2>/dev/null || echo "?")
t_down=$(now_ms)
servers_stop_dovecot "$DIR" >>"$DIR/servers.log" 2>&1
t_stopped=$(now_ms)
kill -CONT "$DAEMON_PID"
sleep 2
servers_start_dovecot "$DIR" >>"$DIR/servers.log" 2>&1
t_up=$(now_ms)
all_cases() {
	[ "$(complaint_ids "$DIR/t3.conf" | grep -cxFf "$DIR/gen.ids")" -ge "$N_NOTICES" ]
}
wait_until 40 all_cases
t_done=$(now_ms)
alive=0
kill -0 "$DAEMON_PID" 2>/dev/null && alive=1
rc=0
[ "$stopped" -eq 0 ] && [ "$committed" = 0 ] || rc=1
tap_ok "$rc" "Dovecot stopped mid-scan (fetcher blocked in ${fetcher_wchan}, $committed cases committed); stop took $((t_stopped - t_down)) ms, down $((t_up - t_down)) ms" "$DIR/t3.log"
complaint_ids "$DIR/t3.conf" >"$DIR/t3.ids"
n_gen=$(grep -cxFf "$DIR/gen.ids" "$DIR/t3.ids")
n_dup=$(uniq -d "$DIR/t3.ids" | wc -l)
n_distinct=$(sort -u "$DIR/t3.ids" | grep -cxFf "$DIR/gen.ids")
rc=0
[ "$n_gen" -eq "$N_NOTICES" ] && [ "$n_distinct" -eq "$N_NOTICES" ] && [ "$n_dup" -eq 0 ] || rc=1
tap_ok "$rc" "after the restart: $n_gen cases for the $N_NOTICES notices ($n_distinct distinct, $n_dup duplicated), $((t_done - t_up)) ms after Dovecot was back" "$DIR/t3.log"
outage_lines=$(grep -c 'shop: .*retrying with back-off' "$DIR/t3.log")
rc=0
[ "$alive" -eq 1 ] && [ "$outage_lines" -eq 1 ] && grep -q 'shop: connected again' "$DIR/t3.log" || rc=1
tap_ok "$rc" "daemon alive: $alive; outage logged $outage_lines time(s); $(grep -o 'connected again after [0-9]* failed attempts' "$DIR/t3.log" | head -n 1)" "$DIR/t3.log"
stop_pid "$DAEMON_PID"
DAEMON_PID=

# ---- 4: UIDVALIDITY reset ----
"$IPCASE" -c "$DIR/t3.conf" list --all --json >"$DIR/t4.before.json" 2>&1
msgs_before=$(sqlite3 "$DIR/s3.db" "SELECT count(*) FROM messages")
uv_before=$(sqlite3 "$DIR/s3.db" "SELECT uidvalidity FROM folders WHERE account = 'shop' AND folder = 'INBOX'")
servers_stop_dovecot "$DIR" >>"$DIR/servers.log" 2>&1
rm -f "$MAILDIR/dovecot-uidlist" "$MAILDIR"/dovecot.index*
servers_start_dovecot "$DIR" >>"$DIR/servers.log" 2>&1
uv_server=$(doveadm -c "$DOVECOT_CONF" mailbox status -u seller uidvalidity INBOX | sed 's/.*uidvalidity=//')
timeout 120 "$IPCASED" -c "$DIR/t3.conf" --once --foreground -v </dev/null >"$DIR/t4.log" 2>&1
rc4=$?
"$IPCASE" -c "$DIR/t3.conf" list --all --json >"$DIR/t4.after.json" 2>&1
msgs_after=$(sqlite3 "$DIR/s3.db" "SELECT count(*) FROM messages")
uv_after=$(sqlite3 "$DIR/s3.db" "SELECT uidvalidity FROM folders WHERE account = 'shop' AND folder = 'INBOX'")
relocated=$(sqlite3 "$DIR/s3.db" "SELECT count(*) FROM message_locations WHERE account = 'shop' AND folder = 'INBOX' AND uidvalidity = $uv_after")
rc=0
[ "$rc4" -eq 0 ] && [ "$uv_server" != "$uv_before" ] && [ "$uv_after" = "$uv_server" ] &&
    grep -q 'UIDVALIDITY changed' "$DIR/t4.log" && [ "$relocated" -gt 0 ] || rc=1
tap_ok "$rc" "UIDVALIDITY $uv_before -> $uv_server: --once exit $rc4, rescanned ($relocated messages found again under the new UIDVALIDITY)" "$DIR/t4.log"
rc=0
cmp -s "$DIR/t4.before.json" "$DIR/t4.after.json" && [ "$msgs_before" -eq "$msgs_after" ] || rc=1
diff "$DIR/t4.before.json" "$DIR/t4.after.json" >"$DIR/t4.diff" 2>&1
tap_ok "$rc" "no duplicate: cases identical ($(grep -o '"id"' "$DIR/t4.after.json" | wc -l) cases), messages rows $msgs_before -> $msgs_after" "$DIR/t4.diff"
# Dense UIDs (1 to the last): fetched in ranges of UIDs, no SEARCH listing them first.
rc=0
grep -q 'shop: INBOX: UIDs 1 to [0-9]* in ranges' "$DIR/t4.log" && ! grep -q 'shop: INBOX: UID SEARCH' "$DIR/t4.log" || rc=1
tap_ok "$rc" "the rescan of dense UIDs asked no SEARCH: $(grep -o 'shop: INBOX: UIDs [0-9]* to [0-9]* in ranges' "$DIR/t4.log")" "$DIR/t4.log"

# ---- 4b: sparse UIDs ----
# A folder whose UIDs start at 100000: ranges from UID 1 would be fifty empty
# commands, so the first scan asks UID SEARCH.  The next run has one new UID
# past the last it saw and fetches that range alone.  Every notice, a case.
doveadm -c "$DOVECOT_CONF" mailbox create -u seller Sparse >>"$DIR/append.log" 2>&1
doveadm -c "$DOVECOT_CONF" mailbox update -u seller --min-next-uid 100000 Sparse >>"$DIR/append.log" 2>&1
mail_append "$DIR" Sparse "$DIR/fresh/s01_us_trademark_inauthentic_2asins.eml" \
    "$DIR/fresh/s02_us_design_patent.eml" >>"$DIR/append.log" 2>&1
conf t4b.conf s4b.db "$(acct_password sparse "$IMAP_PORT" | sed 's/folders = \[ "INBOX" \]/folders = [ "Sparse" ]/')"
timeout 120 "$IPCASED" -c "$DIR/t4b.conf" --once --foreground -v </dev/null >"$DIR/t4b1.log" 2>&1
rc4b1=$?
rc=0
[ "$rc4b1" -eq 0 ] && grep -q 'sparse: Sparse: UID SEARCH listed 2$' "$DIR/t4b1.log" &&
    ! grep -q 'sparse: Sparse: UIDs .* in ranges' "$DIR/t4b1.log" &&
    has_case "$DIR/t4b.conf" 12904418236 && has_case "$DIR/t4b.conf" 15402917763 || rc=1
tap_ok "$rc" "UIDs from 100000 up: first scan (exit $rc4b1) by SEARCH, $(grep -o 'UID SEARCH listed [0-9]*' "$DIR/t4b1.log"), both notices cases" "$DIR/t4b1.log"
mail_append "$DIR" Sparse "$DIR/fresh/s03_in_copyright_packaging.eml" >>"$DIR/append.log" 2>&1
timeout 120 "$IPCASED" -c "$DIR/t4b.conf" --once --foreground -v </dev/null >"$DIR/t4b2.log" 2>&1
rc4b2=$?
last4b=$(sqlite3 "$DIR/s4b.db" "SELECT last_uid FROM folders WHERE account = 'sparse' AND folder = 'Sparse'")
rc=0
[ "$rc4b2" -eq 0 ] && grep -q 'sparse: Sparse: UIDs 100002 to 100002 in ranges' "$DIR/t4b2.log" &&
    ! grep -q 'sparse: Sparse: UID SEARCH' "$DIR/t4b2.log" &&
    has_case "$DIR/t4b.conf" 10084563327 && [ "$last4b" = 100002 ] || rc=1
tap_ok "$rc" "one new UID: the next run (exit $rc4b2) fetched range 100002 alone, its notice a case, last UID $last4b" "$DIR/t4b2.log"

# ---- 5: XOAUTH2 ----
conf t5.conf s5.db "$(acct_oauth oshop)"
fp() { printf '%s' "$1" | sha256sum | cut -c1-12; }
idp_lines() { "$PY" -c '
import json, sys
for l in open(sys.argv[1]).read().splitlines()[int(sys.argv[2]):]:
    e = json.loads(l)
    print(e["path"], e.get("code"), e.get("refresh_fp") or e.get("token_fp"), e.get("rotated_fp") or e.get("active"), e.get("error"))
' "$DIR/idp/requests.jsonl" "$1"; }
idp_mark() { if [ -e "$DIR/idp/requests.jsonl" ]; then wc -l <"$DIR/idp/requests.jsonl"; else echo 0; fi; }
dlog_mark() { wc -l <"$DOVECOT_LOG"; }
ROTATED=$DIR/oauth-oshop.token

m=$(idp_mark)
d=$(dlog_mark)
fp0=$(fp "$(cat "$DIR/oauth.refresh")")
timeout 120 "$IPCASED" -c "$DIR/t5.conf" --once --foreground </dev/null >"$DIR/t5a.log" 2>&1
rc5=$?
idp_lines "$m" >"$DIR/t5a.idp"
xo_logins=$(tail -n +"$((d + 1))" "$DOVECOT_LOG" | grep -c 'Login: user=<seller>, method=XOAUTH2')
rc=0
[ "$rc5" -eq 0 ] && [ "$xo_logins" -ge 1 ] && grep -q "^/token 200 $fp0 " "$DIR/t5a.idp" &&
    grep -q '^/introspect 200 .* True' "$DIR/t5a.idp" || rc=1
tap_ok "$rc" "XOAUTH2: --once exit $rc5; IdP exchanged the configured refresh token; Dovecot logged $xo_logins XOAUTH2 login(s)" "$DIR/t5a.log"
complaint_ids "$DIR/t5.conf" >"$DIR/t5.ids"
rc=0
cmp -s "$DIR/t5.ids" "$DIR/t3.ids" || rc=1
tap_ok "$rc" "XOAUTH2 account opened the same $(wc -l <"$DIR/t5.ids") cases as the password account" "$DIR/t5.ids"
rot_mode=$(stat -c %a "$ROTATED" 2>/dev/null || echo none)
fp1=$(fp "$(head -n 1 "$ROTATED" 2>/dev/null)")
rc=0
[ "$rot_mode" = 600 ] && grep -q "^/token 200 $fp0 $fp1 " "$DIR/t5a.idp" || rc=1
tap_ok "$rc" "rotated refresh token kept in $(basename "$ROTATED") (mode $rot_mode) = the one the IdP issued" "$DIR/t5a.idp"

m=$(idp_mark)
timeout 120 "$IPCASED" -c "$DIR/t5.conf" --once --foreground </dev/null >"$DIR/t5b.log" 2>&1
rc5=$?
idp_lines "$m" >"$DIR/t5b.idp"
fp2=$(fp "$(head -n 1 "$ROTATED" 2>/dev/null)")
rc=0
[ "$rc5" -eq 0 ] && grep -q "^/token 200 $fp1 $fp2 " "$DIR/t5b.idp" && [ "$fp2" != "$fp1" ] || rc=1
tap_ok "$rc" "second run (exit $rc5) used the rotated token ($fp1) and kept the next one ($fp2)" "$DIR/t5b.idp"

# Revoked: the seller withdrew the grant.  Two runs, one alert.
smtp_before=$(wc -l <"$SMTP_LOG")
touch "$DIR/idp/revoked"
m=$(idp_mark)
timeout 120 "$IPCASED" -c "$DIR/t5.conf" --once --foreground </dev/null >"$DIR/t5c.log" 2>&1
rc5c=$?
timeout 120 "$IPCASED" -c "$DIR/t5.conf" --once --foreground </dev/null >"$DIR/t5d.log" 2>&1
rc5d=$?
idp_lines "$m" >"$DIR/t5c.idp"
refused=$(grep -c '^/token 400 .* invalid_grant' "$DIR/t5c.idp")
rc=0
[ "$rc5c" -eq 1 ] && [ "$rc5d" -eq 1 ] && [ "$refused" -eq 2 ] &&
    grep -q 'oshop: XOAUTH2 sign-in refused: .*invalid_grant.*revoked' "$DIR/t5c.log" || rc=1
tap_ok "$rc" "revoked grant: runs exit $rc5c and $rc5d, $refused refused token request(s), log: $(grep -o 'XOAUTH2 sign-in refused: [^;]*' "$DIR/t5c.log" | head -n 1)" "$DIR/t5c.log"
# The alerts among the mail received since the revocation.
"$PY" - "$SMTP_LOG" "$smtp_before" >"$DIR/t5.alerts" <<'PY'
import email, email.policy, json, sys
for line in open(sys.argv[1]).read().splitlines()[int(sys.argv[2]):]:
    e = json.loads(line)
    with open(e["file"], "rb") as f:
        m = email.message_from_binary_file(f, policy=email.policy.default)
    body = m.get_body(("plain",))
    text = body.get_content() if body is not None else ""
    if "oshop" in text and "refresh token" in text:
        print(e.get("message_id"), "|", m["Subject"])
PY
n_alerts=$(wc -l <"$DIR/t5.alerts")
rc=0
[ "$n_alerts" -eq 1 ] || rc=1
tap_ok "$rc" "the seller got $n_alerts alert mail about the revoked grant over 2 failed runs" "$DIR/t5.alerts"
# What the seller reads first must not send them looking for a phishing mail.
rc=0
[ "$n_alerts" -eq 1 ] && ! grep -qi 'phishing' "$DIR/t5.alerts" || rc=1
tap_ok "$rc" "the alert's subject is about the account, not phishing: $(sed 's/.*| //' "$DIR/t5.alerts" | head -n 1)" "$DIR/t5.alerts"
rc=0
grep -qF -e "$(cat "$DIR/oauth.refresh")" -e "$(cat "$ROTATED")" "$DIR"/t5?.log "$DIR/idp/requests.jsonl" && rc=1
tap_ok "$rc" "no refresh token in ipcased's output or the IdP's log"

# ---- 6: flags ----
flags_by_msgid >"$DIR/flags.after"
rc=0
diff -u "$DIR/flags.before" "$DIR/flags.after" >"$DIR/flags.diff" || rc=1
tap_ok "$rc" "flags of all $(wc -l <"$DIR/flags.after") messages unchanged after every run above" "$DIR/flags.diff"

tap_done
