#!/bin/bash
# torture.sh — fault injection against real servers: SIGKILLs at random moments and at random fsyncs while ipcased ingests 1,000 messages, Dovecot restarts, a scan of many header batches, SMTP down, database locked, disk full, clock steps.
#
#   KILLS=N          SIGKILLs that must land in the kill loop (default 100;
#                    tests/t_torture.sh, run by `make check`, uses 10)
#   FAULTS="..."     phases to run, default all: kills restart batches smtp lock
#                    diskfull clock
#   SEED=S           replays the random choices of an earlier run (printed first)
#   KEEP=1           keeps the work directory (kept anyway on failure)
#
# Each phase has its own private Dovecot, SMTP server and state database, so
# its figures stand alone.  Every check prints "ok N - what (figure)".  The
# kill loop: before each round a slice of the generated mailbox (1,000
# messages, 100 notices with their correspondence; tests/genmailbox.py) is
# delivered; then ipcased runs as a daemon or with --once and is killed with
# SIGKILL at a random 50-1500 ms, or by strace at its Nth fsync (N random),
# which is the moment a transaction commits.  A last clean run must then
# leave exactly one case per complaint id, every message recorded once, every
# due reminder delivered, and duplicates only under the Message-ID of the
# first copy.  Needs strace and faketime (tests/deps.sh); the disk-full phase
# needs root for its tmpfs and is skipped with a SKIP line otherwise.
if [ -z "${BASH_VERSION:-}" ]; then
	exec bash "$0" "$@"
fi
set -u
cd "$(dirname "$0")/.." || exit 1
. tests/lib/tap.sh
. tests/lib/servers.sh

PY=/usr/bin/python3
IPCASED=$PWD/daemon/ipcased
IPCASE=$PWD/daemon/ipcase
KILLS=${KILLS:-100}
FAULTS=${FAULTS:-"kills restart batches smtp lock diskfull clock"}
MESSAGES=${MESSAGES:-1000}
NOTICES=${NOTICES:-100}
SEED=${SEED:-$(( $(date +%s) % 32768 ))}
# UIDs per header FETCH and per batch the daemon judges (daemon/imap.h).
FETCH_BATCH=$(sed -n 's/^#define[[:space:]]*IMAP_FETCH_BATCH[[:space:]]*\([0-9]*\).*/\1/p' daemon/imap.h)
[ -n "$FETCH_BATCH" ] || tap_bail "IMAP_FETCH_BATCH read from daemon/imap.h"
RANDOM=$SEED
# The relative paths of the test configs must resolve to their own directory.
unset STATE_DIRECTORY CREDENTIALS_DIRECTORY
# libfaketime is preloaded into a sanitizer build too: ASan must not insist on coming first.
export ASAN_OPTIONS=${ASAN_OPTIONS:-abort_on_error=0:exitcode=23}:verify_asan_link_order=0

W=$(mktemp -d /tmp/ipcased-torture.XXXXXX) || exit 1
# Dovecot runs as nobody and must reach the servers' directories below.
chmod 711 "$W"
SERVER_DIRS=""
DAEMON_PIDS=""
MOUNTS=""
cleanup() {
	local p d
	for p in $DAEMON_PIDS; do
		kill -KILL "$p" 2>/dev/null && wait "$p" 2>/dev/null
	done
	for d in $SERVER_DIRS; do
		servers_stop "$d"
	done
	for d in $MOUNTS; do
		umount "$d" 2>/dev/null
	done
	if [ "$TAP_FAILED" -eq 0 ] && [ "${KEEP:-0}" != 1 ]; then
		rm -rf "$W"
	else
		echo "# work directory kept: $W"
	fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

echo "# seed $SEED (replay: SEED=$SEED KILLS=$KILLS FAULTS=\"$FAULTS\" bash tests/torture.sh)"
[ -x "$IPCASED" ] && [ -x "$IPCASE" ] || tap_bail "daemon/ipcased and daemon/ipcase are built"
for tool in strace faketime sqlite3 doveadm; do
	command -v "$tool" >/dev/null 2>&1 || tap_bail "$tool is installed (tests/deps.sh)"
done

want() {
	case " $FAULTS " in *" $1 "*) return 0 ;; esac
	return 1
}

# ---- helpers ----------------------------------------------------------------

# The checks, in one Python file: each prints "ok - what" / "not ok - what" lines.
export PYTHONPATH=$PWD/tests/lib	# tapcheck.py
cat >"$W/check.py" <<'PY'
import json, os, re, sqlite3, sys
from tapcheck import report, status

def norm(mid):
    return (mid or "").strip().strip("<>")

def manifests(dirs):
    rows = []
    for d in dirs:
        with open(os.path.join(d, "manifest.tsv")) as f:
            rows += [l.rstrip("\n").split("\t") for l in f][1:]
    for r in rows:
        r[5] = norm(r[5])
    return rows

def deliveries(paths):
    out = []
    for p in paths:
        if os.path.exists(p):
            with open(p) as f:
                out += [dict(json.loads(l), message_id=norm(json.loads(l)["message_id"])) for l in f if l.strip()]
    return out

def db_open(path):
    return sqlite3.connect("file:%s?mode=ro" % path, uri=True, timeout=30)

def cmd_integrity(db):
    r = db_open(db).execute("PRAGMA integrity_check").fetchall()
    report(r == [("ok",)], "PRAGMA integrity_check = %s" % r[0][0] if r else "?", r)

def cmd_ingest(db, *gens):
    rows = manifests(gens)
    con = db_open(db)
    want_cids = {r[4] for r in rows if r[2] == "notice"}
    want_msgs = {r[5] for r in rows if r[2] != "noise"}
    noise = {r[5] for r in rows if r[2] == "noise"}
    per_case = {}
    for r in rows:
        if r[2] != "noise":
            per_case.setdefault(r[4], set()).add(r[5])
    ncases = con.execute("SELECT count(*) FROM cases").fetchone()[0]
    cids = [x[0] for x in con.execute("SELECT complaint_id FROM cases")]
    report(ncases == len(want_cids) and set(cids) == want_cids and len(cids) == len(set(cids)),
           "exactly %d cases, one per complaint id (found %d, %d distinct ids)"
           % (len(want_cids), ncases, len(set(cids))),
           ["missing: %s" % sorted(want_cids - set(cids))[:10],
            "unexpected: %s" % sorted(set(cids) - want_cids)[:10]])
    total, distinct_key, distinct_mid = con.execute(
        "SELECT count(*), count(DISTINCT dedupe_key), count(DISTINCT message_id) FROM messages").fetchone()
    mids = {x[0] for x in con.execute("SELECT message_id FROM messages")}
    report(total == len(want_msgs) and distinct_key == total and distinct_mid == total
           and mids == want_msgs,
           "every message of a case recorded once: %d rows, %d expected, %d distinct keys"
           % (total, len(want_msgs), distinct_key),
           ["missing: %s" % sorted(want_msgs - mids)[:10],
            "unexpected: %s" % sorted(mids - want_msgs)[:10]])
    bad = []
    for cid, msgs in per_case.items():
        got = {x[0] for x in con.execute(
            "SELECT m.message_id FROM messages m JOIN cases c ON c.id = m.case_id"
            " WHERE c.complaint_id = ?", (cid,))}
        if got != msgs:
            bad.append("%s: expected %s, got %s" % (cid, sorted(msgs), sorted(got)))
    report(not bad, "each case holds its notice, the seller's mail and the owner's reply (%d cases)"
           % len(per_case), bad)
    report(not (mids & noise), "no ordinary mail recorded (%d of %d)" % (len(mids & noise), len(noise)))
    print("# FIGURE messages_expected=%d recorded=%d lost=%d duplicated=%d"
          % (len(want_msgs), len(mids), len(want_msgs - mids), total - distinct_key))

def cmd_folders(db, inbox_next, sent_next):
    con = db_open(db)
    got = dict(con.execute("SELECT folder, last_uid FROM folders").fetchall())
    want = {"INBOX": int(inbox_next) - 1, "Sent": int(sent_next) - 1}
    report(got == want, "folder progress at the mailbox's end: %s" % got, ["expected %s" % want])

def tag_of(mid):
    # <random.TAG@domain>: TAG names the reminder (r<case>.<task>.<threshold>, d<date>, ...)
    m = re.match(r"[0-9a-f]+\.(.+)@", mid or "")
    return m.group(1) if m else None

def cmd_outbox(db, max_dups, *logs):
    con = db_open(db)
    rows = con.execute("SELECT message_id, status, kind, case_id, task, threshold FROM outbox").fetchall()
    sent = {r[0] for r in rows if r[1] == "sent"}
    waiting = [r for r in rows if r[1] in ("pending", "held")]
    report(not waiting, "no reminder left pending or held (%d of %d rows)" % (len(waiting), len(rows)),
           waiting)
    dl = deliveries(logs)
    count = {}
    for d in dl:
        count[d["message_id"]] = count.get(d["message_id"], 0) + 1
    known = {r[0] for r in rows}
    missing = sorted(sent - set(count))
    report(not missing, "every sent outbox row reached the SMTP server (%d rows, %d mails received)"
           % (len(sent), len(dl)), missing)
    strangers = sorted(set(count) - known)
    report(not strangers, "every mail received has an outbox row's Message-ID", strangers)
    by_tag = {}
    for mid in count:
        by_tag.setdefault(tag_of(mid), set()).add(mid)
    split = {t: sorted(m) for t, m in by_tag.items() if len(m) > 1 or t is None}
    report(not split, "a reminder sent twice kept its Message-ID (%d reminders, %d Message-IDs)"
           % (len(by_tag), len(count)), ["%s: %s" % kv for kv in split.items()])
    dups = sum(n - 1 for n in count.values())
    report(dups <= int(max_dups), "duplicate deliveries: %d (at most %s allowed: one per kill)"
           % (dups, max_dups), ["%s x%d" % (m, n) for m, n in count.items() if n > 1])
    print("# FIGURE duplicates=%d mails=%d distinct=%d" % (dups, len(dl), len(count)))

THRESH = [("72h", -72 * 3600), ("24h", -24 * 3600), ("2h", -2 * 3600), ("due", 0),
          ("overdue1", 86400), ("overdue2", 2 * 86400), ("overdue3", 3 * 86400)]

def cmd_due(db, now):
    """Every open task whose first reminder time has come has its newest reached reminder sent."""
    now = int(now)
    con = db_open(db)
    tasks = con.execute("SELECT t.case_id, t.task, t.due FROM tasks t JOIN cases c ON c.id = t.case_id"
                        " WHERE t.status = 'open' AND (c.snoozed_until IS NULL OR c.snoozed_until <= ?)",
                        (now,)).fetchall()
    missed, due = [], 0
    for case_id, task, t_due in tasks:
        reached = [name for name, off in THRESH if t_due + off <= now]
        if not reached:
            continue
        due += 1
        got = {r[0] for r in con.execute("SELECT threshold FROM outbox WHERE kind = 'task' AND"
                                          " case_id = ? AND task = ? AND status = 'sent'", (case_id, task))}
        order = [name for name, _ in THRESH]
        if not any(order.index(g) >= order.index(reached[-1]) for g in got if g in order):
            missed.append("case %d %s due %d: %s not sent (sent: %s)" % (case_id, task, t_due,
                                                                        reached[-1], sorted(got)))
    report(not missed, "no due reminder missed: %d open tasks due for one, each has its newest "
           "threshold sent" % due, missed)

def cmd_rowsent(db, *logs):
    """No kill here: every outbox row delivered exactly once."""
    con = db_open(db)
    rows = con.execute("SELECT message_id, status FROM outbox").fetchall()
    count = {}
    for d in deliveries(logs):
        count[d["message_id"]] = count.get(d["message_id"], 0) + 1
    bad = [r for r in rows if r[1] == "sent" and count.get(r[0]) != 1]
    bad += [(m, n) for m, n in count.items() if n != 1]
    report(not bad and rows, "each of %d reminders delivered exactly once" % len(rows), bad)

def cmd_count(db, sql, want, what):
    got = db_open(db).execute(sql).fetchone()[0]
    report(str(got) == str(want), "%s: %s (expected %s)" % (what, got, want))

def cmd_listjson(path, want):
    with open(path) as f:
        cases = json.load(f)
    report(len(cases) == int(want) and len({c["complaint_id"] for c in cases}) == int(want),
           "ipcase list --all --json shows %d cases with distinct complaint ids (expected %s)"
           % (len(cases), want))

getattr(sys.modules[__name__], "cmd_" + sys.argv[1])(*sys.argv[2:])
sys.exit(status())
PY

check() {	# check WHAT ARGS...: the Python checks, numbered into this script's output
	tap_feed_cmd "check $1" "$PY" "$W/check.py" "$@"
}

# Delivers messages FROM..TO-1 of a generated mailbox into the Maildir, the
# way an MTA does (tmp/, then rename into new/), named so that Dovecot gives
# them UIDs in the generated order.
cat >"$W/deliver.py" <<'PY'
import os, sys
gen, maildir, counter_file, lo, hi = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
with open(os.path.join(gen, "manifest.tsv")) as f:
    rows = [l.rstrip("\n").split("\t") for l in f][1:]
try:
    with open(counter_file) as f:
        counter = int(f.read())
except FileNotFoundError:
    counter = 0
st = os.stat(maildir)
for seq, folder, *_ in rows[lo:hi]:
    d = maildir if folder == "INBOX" else os.path.join(maildir, "." + folder)
    for sub in ("", "tmp", "new", "cur"):
        os.makedirs(os.path.join(d, sub), exist_ok=True)
        os.chown(os.path.join(d, sub), st.st_uid, st.st_gid)
    with open(os.path.join(gen, "%05d.eml" % int(seq)), "rb") as f:
        data = f.read()
    counter += 1
    name = "%d.M%dP1.torture,S=%d" % (1700000000 + counter, counter, len(data))
    tmp = os.path.join(d, "tmp", name)
    with open(tmp, "wb") as f:
        f.write(data)
    os.chown(tmp, st.st_uid, st.st_gid)
    os.rename(tmp, os.path.join(d, "new", name))
with open(counter_file, "w") as f:
    f.write(str(counter))
PY

# srv_up NAME: private servers and a config in $W/NAME; sets D, CONF, DB, MAILDIR.
srv_up() {
	D=$W/$1
	mkdir -p "$D"
	SERVER_DIRS="$SERVER_DIRS $D"
	servers_start "$D" >"$D/servers.log" 2>&1 || return 1
	write_config "$D" >>"$D/servers.log" 2>&1 || return 1
	CONF=$D/ipcased.conf
	DB=$D/state.db
	MAILDIR=$(doveadm -c "$DOVECOT_CONF" user -f home "$MAIL_USER")/Maildir
	mkdir -p "$MAILDIR"
	chown -R "$(stat -c %u:%g "$(dirname "$MAILDIR")")" "$MAILDIR"
	doveadm -c "$DOVECOT_CONF" mailbox create -u "$MAIL_USER" Sent >>"$D/servers.log" 2>&1
	: >"$D/smtp-earlier.jsonl"
	return 0
}

gen() {	# gen NAME genmailbox-args...: a generated mailbox in $W/NAME
	local name="$1"
	shift
	"$PY" tests/genmailbox.py "$W/$name" "$@" >"$W/$name.log" 2>&1
}

deliver() {	# deliver GENNAME FROM TO
	"$PY" "$W/deliver.py" "$W/$1" "$MAILDIR" "$D/counter" "$2" "$3"
}

gen_count() {	# messages in a generated mailbox
	echo $(( $(wc -l <"$W/$1/manifest.tsv") - 1 ))
}

uidnext() {	# uidnext FOLDER
	doveadm -c "$DOVECOT_CONF" mailbox status -u "$MAIL_USER" uidnext "$1" | sed 's/.*uidnext=//'
}

sql() {
	sqlite3 -batch -cmd '.timeout 30000' "$DB" "$@"
}

# The SMTP server of $D, stopped or started again.  It comes back on another
# port (the config follows) and truncates its log, so the log is kept first.
smtp_stop() {
	cat "$SMTP_LOG" >>"$D/smtp-earlier.jsonl" 2>/dev/null
	: >"$SMTP_LOG"
	_srv_stop_smtp "$D"
}
smtp_start() {
	_srv_start_smtp "$D" >>"$D/servers.log" 2>&1 || return 1
	sed -i "s|url = \"smtp://127.0.0.1:[0-9]*\";|url = \"smtp://127.0.0.1:$SMTP_PORT\";|" "$CONF"
	sed -i "s/^SMTP_PORT=.*/SMTP_PORT=$SMTP_PORT/; s/^SMTP_PID=.*/SMTP_PID=$SMTP_PID/" "$D/servers.env"
}

# A full restart of $D's Dovecot on the same port: the master stops, the
# session processes it leaves behind are killed (by the pids it had as
# children), a new master starts.  Prints the seconds it was down.
dovecot_restart() {
	local base master kids t0 t1
	base=$(cat "$D/dovecot/base_dir")
	master=$(cat "$base/master.pid")
	kids=$(pgrep -P "$master" | tr '\n' ' ')
	t0=$(date +%s.%N)
	doveadm -c "$DOVECOT_CONF" stop >>"$D/servers.log" 2>&1
	for _ in $(seq 100); do
		kill -0 "$master" 2>/dev/null || break
		sleep 0.05
	done
	for p in $kids; do
		kill -KILL "$p" 2>/dev/null
	done
	dovecot -c "$DOVECOT_CONF" </dev/null >>"$D/dovecot/start.log" 2>&1 || return 1
	_srv_wait_port "$IMAP_PORT" 10 || return 1
	t1=$(date +%s.%N)
	echo "$t0 $t1" | awk '{printf "%.2f\n", $2 - $1}'
}

# The certificates of $D made two days ago and valid for 30, so that the
# clock phase can turn the client's clock back without a "not yet valid".
backdate_certs() {
	local t=$D/tls
	(
		umask 077
		faketime -f -2d openssl req -x509 -newkey rsa:2048 -nodes -days 30 \
		    -subj "/CN=ipcased test CA" -addext "basicConstraints=critical,CA:TRUE" \
		    -addext "keyUsage=critical,keyCertSign,cRLSign" -keyout "$t/ca.key" -out "$t/ca.pem" &&
		faketime -f -2d openssl req -newkey rsa:2048 -nodes -subj "/CN=localhost" \
		    -keyout "$t/server.key" -out "$t/server.csr" &&
		faketime -f -2d openssl x509 -req -in "$t/server.csr" -CA "$t/ca.pem" -CAkey "$t/ca.key" \
		    -CAcreateserial -days 30 -extfile "$t/server.ext" -out "$t/server.pem"
	) >>"$D/servers.log" 2>&1 || return 1
	chmod 644 "$t/ca.pem" "$t/server.pem"
	# The key belongs to root; Dovecot's master reads it before dropping privileges.
	doveadm -c "$DOVECOT_CONF" reload >>"$D/servers.log" 2>&1 || return 1
	smtp_stop && smtp_start
}

daemon_start() {	# daemon_start LOG [PREFIX...]: ipcased as a daemon; sets DPID
	local log="$1"
	shift
	"$@" "$IPCASED" -c "$CONF" --foreground >"$log" 2>&1 </dev/null &
	DPID=$!
	DAEMON_PIDS="$DAEMON_PIDS $DPID"
}

daemon_stop() {	# TERM, then KILL after 10 s; returns the exit status
	local rc
	kill -TERM "$DPID" 2>/dev/null
	for _ in $(seq 100); do
		kill -0 "$DPID" 2>/dev/null || break
		sleep 0.1
	done
	kill -KILL "$DPID" 2>/dev/null
	wait "$DPID"
	rc=$?
	DAEMON_PIDS=${DAEMON_PIDS/ $DPID/}
	return "$rc"
}

wait_for() {	# wait_for SECONDS CMD...: until CMD succeeds
	local end=$(( $(date +%s) + $1 ))
	shift
	while ! "$@" >/dev/null 2>&1; do
		[ "$(date +%s)" -ge "$end" ] && return 1
		sleep 0.1
	done
}

all_ingested() {	# both folders recorded up to the mailbox's last UID
	local i s
	i=$(sql "SELECT last_uid FROM folders WHERE folder = 'INBOX'")
	s=$(sql "SELECT last_uid FROM folders WHERE folder = 'Sent'")
	[ "${i:-0}" -eq $(( $(uidnext INBOX) - 1 )) ] && [ "${s:-0}" -eq $(( $(uidnext Sent) - 1 )) ]
}

outbox_quiet() {	# nothing pending: every planned reminder went out
	[ "$(sql "SELECT count(*) FROM outbox WHERE status = 'pending'")" -eq 0 ]
}

sent_more_than() {	# more than $1 outbox rows sent
	[ "$(sql "SELECT count(*) FROM outbox WHERE status = 'sent'")" -gt "$1" ]
}

once() {	# once LOG [PREFIX...]: one ipcased --once $ONCE_FLAGS (at most $ONCE_TIMEOUT s); returns its exit status
	local log="$1"
	shift
	# shellcheck disable=SC2086
	timeout -k 5 "${ONCE_TIMEOUT:-600}" "$@" "$IPCASED" -c "$CONF" --once --foreground \
	    ${ONCE_FLAGS:-} >"$log" 2>&1 </dev/null
}

ms_sleep() {
	sleep "$(printf '%d.%03d' $(( $1 / 1000 )) $(( $1 % 1000 )))"
}

# What the daemon was doing when it died, from its last log line.
phase_of() {
	local last
	last=$(grep -v '^$' "$1" 2>/dev/null | tail -n 1)
	case "$last" in
	*" UID "*) echo ingest ;;
	*schedule:* | *smtp:* | *reminders:*) echo send ;;
	*connected* | *"fetcher done"*) echo "connected: syncing or idle" ;;
	*) echo start ;;
	esac
}

# ---- 1. SIGKILL loop ----------------------------------------------------------

phase_kills() {
	local g=gen-main n chunk delivered=0 landed=0 tkills=0 fkills=0 rounds=0 clean=0
	local integ_bad=0 orphans=0 log rc ms nth kids mode t0 t1
	local p_start=0 p_sync=0 p_ingest=0 p_send=0

	srv_up kills || tap_bail "servers for the kill loop start" "$D/servers.log"
	gen "$g" --messages "$MESSAGES" --notices "$NOTICES" --seed "$SEED" ||
	    tap_bail "mailbox generated" "$W/$g.log"
	n=$(gen_count "$g")
	# Mail keeps arriving during the first 80 % of the kills: each round has new work.
	chunk=$(( (n + KILLS * 8 / 10) / (KILLS * 8 / 10 > 0 ? KILLS * 8 / 10 : 1) ))
	t0=$(date +%s)
	while [ "$landed" -lt "$KILLS" ] && [ "$rounds" -lt $(( KILLS * 4 )) ]; do
		rounds=$((rounds + 1))
		if [ "$delivered" -lt "$n" ]; then
			deliver "$g" "$delivered" $(( delivered + chunk > n ? n : delivered + chunk ))
			delivered=$(( delivered + chunk > n ? n : delivered + chunk ))
		fi
		log=$D/round$rounds.log
		mode=$(( RANDOM % 4 ))
		if [ "$mode" -le 1 ]; then
			# A random moment, as a daemon (mode 0) or a --once run (mode 1).
			ms=$(( 50 + RANDOM % 1451 ))
			if [ "$mode" -eq 0 ]; then
				"$IPCASED" -c "$CONF" --foreground >"$log" 2>&1 </dev/null &
			else
				"$IPCASED" -c "$CONF" --once --foreground >"$log" 2>&1 </dev/null &
			fi
			DPID=$!
			DAEMON_PIDS="$DAEMON_PIDS $DPID"
			ms_sleep "$ms"
			kids=$(pgrep -P "$DPID" | tr '\n' ' ')
			if kill -KILL "$DPID" 2>/dev/null; then
				wait "$DPID" 2>/dev/null
				rc=137
				echo "# round $rounds: SIGKILL after $ms ms ($([ "$mode" -eq 0 ] && echo daemon || echo --once), $(phase_of "$log"))"
			else
				wait "$DPID"
				rc=$?
			fi
			DAEMON_PIDS=${DAEMON_PIDS/ $DPID/}
			if [ "$rc" -eq 137 ]; then
				tkills=$((tkills + 1))
				# The fetcher dies with its parent (PR_SET_PDEATHSIG).
				sleep 0.2
				for p in $kids; do
					# A zombie nobody reaps (PID 1 of a container) is dead already.
					if kill -0 "$p" 2>/dev/null && [ "$(ps -o stat= -p "$p" | cut -c1)" != Z ]; then
						orphans=$((orphans + 1))
						kill -KILL "$p" 2>/dev/null
					fi
				done
			fi
		else
			# The Nth fsync: the moment a transaction commits (or a send is recorded).
			# Half of them among the first few, which commit the batches of mail.
			if [ $(( RANDOM % 2 )) -eq 0 ]; then
				nth=$(( 1 + RANDOM % 4 ))
			else
				nth=$(( 1 + RANDOM % 40 ))
			fi
			# In a subshell whose stderr is dropped: bash announces the kill there.
			(
				timeout -k 5 600 strace -f -o /dev/null -e trace=fsync,fdatasync \
				    -e inject=fsync,fdatasync:signal=SIGKILL:when="$nth" \
				    "$IPCASED" -c "$CONF" --once --foreground >"$log" 2>&1 </dev/null
				echo $? >"$D/rc"
			) 2>/dev/null
			rc=$(cat "$D/rc")
			if [ "$rc" -eq 137 ]; then
				fkills=$((fkills + 1))
				echo "# round $rounds: SIGKILL at fsync $nth ($(phase_of "$log"))"
			fi
		fi
		if [ "$rc" -eq 137 ]; then
			landed=$((landed + 1))
			case $(phase_of "$log") in
			start) p_start=$((p_start + 1)) ;;
			connected*) p_sync=$((p_sync + 1)) ;;
			ingest) p_ingest=$((p_ingest + 1)) ;;
			send) p_send=$((p_send + 1)) ;;
			esac
			[ "$(sql 'PRAGMA integrity_check')" = ok ] || integ_bad=$((integ_bad + 1))
		elif [ "$rc" -eq 0 ]; then
			clean=$((clean + 1))
		else
			echo "# round $rounds: exit $rc, see $log"
			tap_ok 1 "round $rounds: ipcased exits 0 or is killed (exit $rc)" "$log"
		fi
	done
	# Whatever was not delivered yet (a run with few landed kills).
	[ "$delivered" -lt "$n" ] && deliver "$g" "$delivered" "$n"
	t1=$(date +%s)
	tap_ok $(( landed == KILLS ? 0 : 1 )) "$landed SIGKILLs landed ($tkills at a random 50-1500 ms, $fkills at a random fsync; $rounds rounds, $clean ended on their own, $((t1 - t0)) s)"
	echo "# kills by what the daemon was doing (its last log line): starting $p_start, connected (syncing or idle) $p_sync, recording a notice $p_ingest, sending reminders $p_send"
	echo "# FIGURE kills=$landed time_kills=$tkills fsync_kills=$fkills rounds=$rounds"
	tap_ok $(( integ_bad == 0 ? 0 : 1 )) "PRAGMA integrity_check ok after every kill ($integ_bad bad)"
	tap_ok $(( orphans == 0 ? 0 : 1 )) "no fetcher outlived its killed daemon ($orphans)"

	once "$D/final.log"
	rc=$?
	tap_ok "$rc" "a last clean ipcased --once exits 0 (exit $rc)" "$D/final.log"
	"$IPCASE" -c "$CONF" list --all --json >"$D/cases.json" 2>"$D/list.err"
	tap_ok $? "ipcase list --all --json exits 0" "$D/list.err"
	check listjson "$D/cases.json" "$(grep -c $'\tnotice\t' "$W/$g/manifest.tsv")"
	check integrity "$DB"
	check ingest "$DB" "$W/$g"
	check folders "$DB" "$(uidnext INBOX)" "$(uidnext Sent)"
	check outbox "$DB" "$landed" "$D/smtp-earlier.jsonl" "$SMTP_LOG"
	check due "$DB" "$(date +%s)"
}

# ---- 2. Dovecot restarted during a fetch and during IDLE --------------------

phase_restart() {
	local g=gen-restart g2=gen-idle g3=gen-idle2 fetcher down rc n
	srv_up restart || tap_bail "servers for the restart phase start" "$D/servers.log"
	# Two header batches in INBOX, so a fetch is still going when the first
	# batch is logged.
	gen "$g" --messages $(( FETCH_BATCH + 300 )) --notices 4 --first-case 1000 --seed "$SEED" || tap_bail "mailbox generated"
	deliver "$g" 0 "$(gen_count "$g")"
	daemon_start "$D/daemon.log"
	wait_for 30 grep -q ' UID ' "$D/daemon.log"
	fetcher=$(pgrep -P "$DPID" -x ipcased-fetch | head -n 1)
	# Frozen mid-fetch while the server goes away and comes back.
	[ -n "$fetcher" ] && kill -STOP "$fetcher"
	down=$(dovecot_restart)
	rc=$?
	[ -n "$fetcher" ] && kill -CONT "$fetcher"
	tap_ok "$rc" "Dovecot restarted (down ${down:-?} s) while the fetcher was in a fetch" "$D/servers.log"
	wait_for 90 all_ingested
	tap_ok $? "the daemon reconnected and finished the mailbox" "$D/daemon.log"
	kill -0 "$DPID" 2>/dev/null
	tap_ok $? "the daemon survived the restart (pid $DPID)" "$D/daemon.log"
	grep -q 'connected again' "$D/daemon.log"
	tap_ok $? "the daemon logged its reconnection" "$D/daemon.log"

	# IDLE: the session process is killed, then the whole server restarted.
	wait_for 30 grep -q 'connected' "$D/daemon.log"
	sleep 1
	gen "$g2" --messages 30 --notices 3 --first-case 1100 --seed "$SEED"
	n=$(grep -c 'connected' "$D/daemon.log")
	for p in $(pgrep -P "$(cat "$(cat "$D/dovecot/base_dir")/master.pid")"); do
		[ "$(cat "/proc/$p/comm" 2>/dev/null)" = imap ] && kill -KILL "$p"
	done
	deliver "$g2" 0 "$(gen_count "$g2")"
	wait_for 60 all_ingested
	tap_ok $? "IMAP session killed during IDLE: the daemon reconnected and took the new mail" "$D/daemon.log"
	sleep 1
	down=$(dovecot_restart)
	rc=$?
	tap_ok "$rc" "Dovecot restarted during IDLE (down ${down:-?} s)" "$D/servers.log"
	gen "$g3" --messages 30 --notices 3 --first-case 1200 --seed "$SEED"
	deliver "$g3" 0 "$(gen_count "$g3")"
	wait_for 60 all_ingested
	tap_ok $? "after the restart during IDLE the daemon took the new mail" "$D/daemon.log"
	kill -0 "$DPID" 2>/dev/null
	tap_ok $? "the daemon survived both (pid $DPID, $(( $(grep -c 'connected' "$D/daemon.log") - n )) reconnections after IDLE)" "$D/daemon.log"
	wait_for 60 outbox_quiet
	daemon_stop
	rc=$?
	tap_ok "$rc" "the daemon stops on SIGTERM with exit 0 (exit $rc)" "$D/daemon.log"
	check integrity "$DB"
	check ingest "$DB" "$W/$g" "$W/$g2" "$W/$g3"
	check outbox "$DB" 0 "$D/smtp-earlier.jsonl" "$SMTP_LOG"
}

# ---- 2b. One scan of many header batches ------------------------------------

# The fetcher keeps up to 3 header batches in flight while the parent judges
# them one at a time (fetcher.c, sync.c).  A rights owner's reply must still
# be fetched and linked whether it lands later in its notice's batch (the
# parent's second round) or in a batch sent while the notice's one was
# judged.  The seed is fixed: its mailbox has both kinds of pair.
phase_batches() {
	local g=gen-batches rc straddle
	srv_up batches || tap_bail "servers for the batches phase start" "$D/servers.log"
	gen "$g" --messages 6500 --notices 150 --first-case 2000 --date now --seed 12 ||
	    tap_bail "mailbox generated"
	# The owners' replies lose the complaint id from their subject: the
	# rules' pre-screen no longer picks them, only what the cases know (the
	# owner's address, once the notice is recorded) makes them candidates.
	awk -F'\t' 'NR > 1 && $3 == "owner" { printf "%s/%05d.eml\n", dir, $1 }' dir="$W/$g" \
	    "$W/$g/manifest.tsv" | xargs sed -i 's/^Subject: .*/Subject: RE: our call on Tuesday\r/'
	deliver "$g" 0 "$(gen_count "$g")"
	# The scan is what this phase is about: the case alerts stay queued.
	smtp_stop
	# INBOX rows in UID order, FETCH_BATCH to a batch.
	straddle=$(awk -F'\t' -v b="$FETCH_BATCH" 'NR > 1 && $2 == "INBOX" { n++; if ($3 == "notice") at[$4] = n;
	    if ($3 == "owner") { if (int((at[$4] - 1) / b) != int((n - 1) / b)) s++; else w++ } }
	    END { printf "%d %d", s, w }' "$W/$g/manifest.tsv")
	ONCE_FLAGS=-v once "$D/once.log"
	rc=$?
	set -- $straddle
	[ "$rc" -eq 0 ] && [ "$1" -gt 0 ] && [ "$2" -gt 0 ] &&
	    [ "$(grep -c 'waits behind' "$D/once.log")" -gt 0 ]
	tap_ok $? "--once over $(gen_count "$g") messages (exit $rc): $(grep -c 'waits behind' "$D/once.log") batches queued behind another; $1 owner replies in a later batch than their notice, $2 in the same" "$D/once.log"
	check integrity "$DB"
	check ingest "$DB" "$W/$g"
	check folders "$DB" "$(uidnext INBOX)" "$(uidnext Sent)"
}

# ---- 3. SMTP server down for an hour ----------------------------------------

phase_smtp() {
	local g=gen-smtp rc planned t hours=0 pending
	srv_up smtp || tap_bail "servers for the SMTP phase start" "$D/servers.log"
	gen "$g" --messages 40 --notices 4 --first-case 2000 --seed "$SEED" || tap_bail "mailbox generated"
	deliver "$g" 0 "$(gen_count "$g")"
	smtp_stop
	once "$D/down0.log"
	rc=$?
	planned=$(sql "SELECT count(*) FROM outbox")
	pending=$(sql "SELECT count(*) FROM outbox WHERE status = 'pending'")
	tap_ok $(( rc == 0 && planned > 0 && pending == planned ? 0 : 1 )) \
	    "SMTP down: the run exits $rc, $planned reminders planned, all kept pending" "$D/down0.log"
	grep -q 'not sent' "$D/down0.log"
	tap_ok $? "the failure is logged: $(grep -m1 -o 'not sent ([^;]*' "$D/down0.log" | cut -c1-80)" "$D/down0.log"
	sql "SELECT message_id FROM outbox ORDER BY id" >"$D/ids.before"
	# Runs every 10 minutes of an hour, the server still down.
	rc=0
	for t in 10 20 30 40 50 60; do
		once "$D/down$t.log" faketime -f "+${t}m" || rc=1
	done
	tap_ok "$rc" "six more runs in the simulated hour exit 0, the server still down" "$D/down60.log"
	pending=$(sql "SELECT count(*) FROM outbox WHERE status = 'pending'")
	tap_ok $(( pending == planned ? 0 : 1 )) "after the hour all $planned reminders still pending ($pending)"
	smtp_start || tap_bail "SMTP server started again" "$D/servers.log"
	# Back-off may put the next try past the hour: runs at +1h, +2h, ... +7h.
	for t in 1 2 3 4 5 6 7; do
		once "$D/up$t.log" faketime -f "+${t}h"
		hours=$t
		[ "$(sql "SELECT count(*) FROM outbox WHERE status <> 'sent'")" -eq 0 ] && break
	done
	sql "SELECT message_id FROM outbox ORDER BY id" >"$D/ids.after"
	cmp -s "$D/ids.before" "$D/ids.after"
	tap_ok $? "the same $planned Message-IDs before and after the outage"
	echo "# FIGURE smtp_down_reminders=$planned delivered_by_hour=$hours"
	tap_ok 0 "all reminders out $hours h after the outage began"
	check outbox "$DB" 0 "$D/smtp-earlier.jsonl" "$SMTP_LOG"
	check rowsent "$DB" "$D/smtp-earlier.jsonl" "$SMTP_LOG"
	check integrity "$DB"
}

# ---- 4. the database locked for 10 s ---------------------------------------

phase_lock() {
	local g=gen-lock n half lockpid rc t0 t1
	srv_up lock || tap_bail "servers for the lock phase start" "$D/servers.log"
	gen "$g" --messages 120 --notices 6 --first-case 3000 --seed "$SEED" || tap_bail "mailbox generated"
	n=$(gen_count "$g")
	half=$(( n / 3 ))
	deliver "$g" 0 "$half"
	once "$D/first.log" || tap_ok 1 "a first run on a third of the mailbox" "$D/first.log"

	# (a) The daemon is running, mail arrives, another process holds a write lock for 10 s.
	daemon_start "$D/daemon.log"
	wait_for 30 all_ingested
	wait_for 30 grep -q 'connected' "$D/daemon.log"
	sleep 1
	t0=$(date +%s.%N)
	(echo "BEGIN IMMEDIATE; INSERT INTO events(case_id, at, what) VALUES (NULL, 0, 'torture: lock');"
	    sleep 10; echo "ROLLBACK;") | sqlite3 "$DB" >"$D/lock1.log" 2>&1 &
	lockpid=$!
	sleep 0.3
	deliver "$g" "$half" $(( 2 * half ))
	kill -USR2 "$DPID"
	wait "$lockpid"
	wait_for 30 all_ingested
	rc=$?
	t1=$(date +%s.%N)
	tap_ok "$rc" "daemon: mail that came during a 10 s write lock recorded $(echo "$t0 $t1" | awk '{printf "%.1f", $2 - $1}') s after the lock began" "$D/daemon.log"
	kill -0 "$DPID" 2>/dev/null
	tap_ok $? "the daemon kept running" "$D/daemon.log"
	# SIGTERM aborts a send in progress (kept for a retry a minute later): let them finish.
	wait_for 60 outbox_quiet
	daemon_stop

	# (b) ipcased --once starts while the lock is held.
	deliver "$g" $(( 2 * half )) "$n"
	(echo "BEGIN IMMEDIATE; INSERT INTO events(case_id, at, what) VALUES (NULL, 0, 'torture: lock');"
	    sleep 10; echo "ROLLBACK;") | sqlite3 "$DB" >"$D/lock2.log" 2>&1 &
	lockpid=$!
	sleep 0.3
	"$IPCASE" -c "$CONF" list --all --json >"$D/list-locked.json" 2>"$D/list-locked.err"
	tap_ok $? "ipcase list reads while the write lock is held" "$D/list-locked.err"
	once "$D/locked.log"
	rc=$?
	wait "$lockpid"
	tap_ok "$rc" "ipcased --once started under the lock waits and exits 0 (exit $rc)" "$D/locked.log"
	! grep -qiE 'locked|busy|database error' "$D/daemon.log" "$D/locked.log"
	tap_ok $? "no error surfaced: no 'locked', 'busy' or 'database error' in the logs" "$D/locked.log"
	wait_for 5 all_ingested
	tap_ok $? "both folders recorded to their end"
	check integrity "$DB"
	check ingest "$DB" "$W/$g"
	check outbox "$DB" 0 "$D/smtp-earlier.jsonl" "$SMTP_LOG"
}

# ---- 5. the state directory's file system full ------------------------------

phase_diskfull() {
	local g=gen-full n rc mnt free
	if [ "$(id -u)" -ne 0 ]; then
		tap_ok 0 "disk full # SKIP mounting a tmpfs needs root"
		return
	fi
	srv_up diskfull || tap_bail "servers for the disk-full phase start" "$D/servers.log"
	mnt=$D/state
	mkdir -p "$mnt"
	if ! mount -t tmpfs -o size=8m,mode=0755 tmpfs "$mnt" 2>"$D/mount.err"; then
		tap_ok 0 "disk full # SKIP cannot mount a tmpfs here: $(head -c 100 "$D/mount.err")"
		return
	fi
	MOUNTS="$MOUNTS $mnt"
	sed -i 's|^state = "state.db";|state = "state/state.db";|' "$CONF"
	DB=$mnt/state.db
	gen "$g" --messages 300 --notices 12 --first-case 5000 --seed "$SEED" || tap_bail "mailbox generated"
	n=$(gen_count "$g")
	deliver "$g" 0 30
	once "$D/first.log"
	tap_ok $? "a first run with the state on an 8 MB tmpfs" "$D/first.log"
	# (a) Full while mail is recorded: 128 KiB left, the rest of the mailbox arrives.
	free=$(df -k --output=avail "$mnt" | tail -n 1 | tr -d ' ')
	dd if=/dev/zero of="$mnt/filler" bs=1k count=$(( free - 128 )) >/dev/null 2>&1
	free=$(df -k --output=avail "$mnt" | tail -n 1 | tr -d ' ')
	deliver "$g" 30 "$n"
	# A one-shot run that retries a failing database forever would never end.
	ONCE_TIMEOUT=90 once "$D/full.log"
	rc=$?
	tap_ok $(( rc == 124 ? 1 : 0 )) "ipcased --once gives up while the disk is full ($(grep -c 'connected' "$D/full.log") connections, $(grep -c 'database or disk is full' "$D/full.log") failed commits$([ "$rc" -eq 124 ] && echo ', killed after 90 s'))" "$D/full.log"
	grep -q 'database or disk is full' "$D/full.log"
	tap_ok $? "full while recording ($free KiB free): the log says \"$(grep -m1 -o 'database or disk is full' "$D/full.log")\"" "$D/full.log"
	tap_ok $(( rc != 0 && rc != 124 ? 0 : 1 )) "ipcased --once exits non-zero while the disk is full (exit $rc)" "$D/full.log"
	check integrity "$DB"
	# (b) Full to the last block before it starts.
	dd if=/dev/zero of="$mnt/filler2" bs=4k >/dev/null 2>&1
	ONCE_TIMEOUT=90 once "$D/full2.log"
	rc=$?
	grep -qi 'no space left on device\|database or disk is full' "$D/full2.log"
	tap_ok $? "full at start: the log names the cause: $(grep -m1 -io 'no space left on device\|database or disk is full' "$D/full2.log")" "$D/full2.log"
	tap_ok $(( rc != 0 && rc != 124 ? 0 : 1 )) "and ipcased --once gives up with a non-zero exit (exit $rc)" "$D/full2.log"
	# Space returns; the database the failed run left behind is checked before anything touches it.
	rm -f "$mnt/filler" "$mnt/filler2"
	check integrity "$DB"
	once "$D/after.log"
	rc=$?
	tap_ok "$rc" "space back: the next run exits 0 (exit $rc)" "$D/after.log"
	check integrity "$DB"
	check ingest "$DB" "$W/$g"
	check folders "$DB" "$(uidnext INBOX)" "$(uidnext Sent)"
	check outbox "$DB" 3 "$D/smtp-earlier.jsonl" "$SMTP_LOG"
	check due "$DB" "$(date +%s)"
}

# ---- 6. the clock stepped forward a day and back an hour --------------------

phase_clock() {
	local g=gen-clock rc=0 before after now rows mails lib
	srv_up clock || tap_bail "servers for the clock phase start" "$D/servers.log"
	backdate_certs || tap_bail "certificates valid from two days ago" "$D/servers.log"
	gen "$g" --messages 20 --notices 3 --first-case 4000 --date now --seed "$SEED" ||
	    tap_bail "mailbox generated"
	deliver "$g" 0 "$(gen_count "$g")"
	now=$(date +%s)
	once "$D/t0.log" || rc=1
	before=$(sql "SELECT count(*) FROM outbox")
	once "$D/plus1d.log" faketime -f '+1d' || rc=1
	after=$(sql "SELECT count(*) FROM outbox")
	tap_ok "$rc" "runs now and a day ahead exit 0 ($before reminders now, $((after - before)) more a day later)" "$D/plus1d.log"
	check due "$DB" $(( now + 86400 ))
	cp "$SMTP_LOG" "$D/smtp.after1d"
	rc=0
	once "$D/plus23h.log" faketime -f '+23h' || rc=1
	once "$D/minus1h.log" faketime -f '-1h' || rc=1
	once "$D/again.log" || rc=1
	once "$D/plus1d-again.log" faketime -f '+1d' || rc=1
	tap_ok "$rc" "then an hour back (+23 h), an hour before now, now, a day ahead again: all exit 0" "$D/plus23h.log"
	cmp -s "$D/smtp.after1d" "$SMTP_LOG"
	tap_ok $? "after the clock went back nothing was sent again ($(( $(wc -l <"$SMTP_LOG") - $(wc -l <"$D/smtp.after1d") )) mails)"
	check rowsent "$DB" "$SMTP_LOG"

	# The daemon running while its clock is stepped (libfaketime reads the
	# offset from a file at every call; CLOCK_MONOTONIC does not jump, as on
	# a real system).  The schedule looks at least once a minute.
	if [ "${CLOCK_LIVE:-1}" = 1 ]; then
		lib=/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1
		echo "+1d" >"$D/faketime.rc"
		daemon_start "$D/live.log" env LD_PRELOAD="$lib" FAKETIME_TIMESTAMP_FILE="$D/faketime.rc" \
		    FAKETIME_NO_CACHE=1 DONT_FAKE_MONOTONIC=1
		wait_for 30 grep -q connected "$D/live.log"
		sleep 2
		rows=$(sql "SELECT count(*) FROM outbox")
		echo "+2d" >"$D/faketime.rc"
		wait_for 75 sent_more_than "$rows"
		tap_ok $? "running daemon, clock stepped a day forward: the overdue reminders went out within a minute ($(( $(sql "SELECT count(*) FROM outbox") - rows )) new)" "$D/live.log"
		sleep 3
		mails=$(wc -l <"$SMTP_LOG")
		echo "+47h" >"$D/faketime.rc"
		sleep 65
		[ "$(wc -l <"$SMTP_LOG")" -eq "$mails" ]
		tap_ok $? "then an hour back: nothing sent in the next 65 s ($(( $(wc -l <"$SMTP_LOG") - mails )) mails)" "$D/live.log"
		kill -0 "$DPID" 2>/dev/null
		tap_ok $? "the daemon kept running through both steps" "$D/live.log"
		wait_for 60 outbox_quiet
		daemon_stop
		check due "$DB" $(( now + 2 * 86400 ))
		check rowsent "$DB" "$SMTP_LOG"
	fi
	check integrity "$DB"
}

for phase in kills restart batches smtp lock diskfull clock; do
	want "$phase" || continue
	t0=$(date +%s)
	"phase_$phase"
	echo "# phase $phase: $(( $(date +%s) - t0 )) s"
done
tap_done
