#!/bin/bash
# run.sh — `make bench`: first, classification alone (bench/classify_bench.c
# over BENCH_CLASSIFY messages, 10,000 by default: messages per second per
# core, and the share the header pre-screen sends on to have their bodies
# decoded); then ipcased's first scan and idle poll against a private
# Dovecot holding generated mailboxes of 1,000, 10,000 and 50,000 messages, side
# by side with the floor (the same header fetch by the simplest client,
# bench/floor.py) and mbsync syncing the same mailbox.  Not a test: it prints
# figures.  BENCH_SIZES="1000 10000" to run fewer; BENCH_RUNS (5) runs of the
# floor and the first scan each, the medians printed.  The floor and the first
# scan are measured on each of BENCH_STORES: Dovecot's maildir, and sdbox, the
# store Dovecot's documentation recommends beyond small installations (the same
# messages, copied in by doveadm import, behind a second login).
set -u
cd "$(dirname "$0")/.." || exit 1
. tests/lib/servers.sh
# The benchmark's own tools: mbsync to compare with, bc for the arithmetic.
for tool in mbsync:isync bc:bc time:time; do
	command -v "${tool%%:*}" >/dev/null 2>&1 || [ -x "/usr/bin/${tool%%:*}" ] && continue
	$( [ "$(id -u)" -eq 0 ] || echo sudo ) env DEBIAN_FRONTEND=noninteractive \
	    apt-get install -y -qq --no-install-recommends "${tool#*:}" >/dev/null
done
sizes=${BENCH_SIZES:-"1000 10000 50000"}
runs=${BENCH_RUNS:-5}
stores=${BENCH_STORES:-"maildir sdbox"}
for store in $stores; do
	case $store in maildir | sdbox) ;; *) echo "BENCH_STORES: maildir and/or sdbox" >&2; exit 2 ;; esac
done
dir=$(mktemp -d /tmp/ipcased-bench.XXXXXX)
trap 'servers_stop "$dir/srv"; rm -rf "$dir"' EXIT
chmod 711 "$dir"	# Dovecot's unprivileged processes walk through it to the mailbox

# Classification: the same generated mix the IMAP runs see, from files, no
# network.  Built from the library's objects as `make all` left them.
ncls=${BENCH_CLASSIFY:-10000}
# shellcheck disable=SC2046
cc $(make -s print-cflags) -o "$dir/classify_bench" bench/classify_bench.c daemon/libipcased.a \
    $(make -s print-ldlibs) || exit 1
/usr/bin/python3 bench/genmail.py "$dir/cls" 0 "$ncls" tests/samples
echo "classification (one core; header pre-screen, then decode and rules where it says so)"
printf '%-8s %12s %8s %8s %11s %14s  %s\n' messages prescreened share_% cpu_s msgs_per_s decoded_per_s kinds
read -r ct cs csh ccpu crate cdec ckinds < <("$dir/classify_bench" tests/samples.conf "$dir/cls/cur")
printf '%-8s %12s %8s %8s %11s %14s  %s\n' "$ct" "$cs" "$csh" "$ccpu" "$crate" "$cdec" "$ckinds"
echo "share_%: bodies decoded (pre-screen passed); msgs_per_s: all messages per CPU second;"
echo "decoded_per_s: the pre-screened ones alone (MIME decode + rules) per CPU second"
rm -rf "$dir/cls"
echo
servers_start "$dir/srv" >/dev/null || exit 1
write_config "$dir/srv" || exit 1
conf=$dir/srv/ipcased.conf
# The scan is measured, not the delivery of the reminders it produces: with
# the SMTP server stopped they stay queued after one refused connection.
_srv_stop_smtp "$dir/srv"
# The bench measures INBOX alone: the floor and mbsync see nothing else.
sed -i 's/^    sent_folder = "Sent";$//' "$conf"
home=$(doveadm -c "$DOVECOT_CONF" user -f home "$MAIL_USER")
maildir=$home/Maildir
owner=$(stat -c %U "$home")

# The sdbox login: the same home and password, its mail in ~/sdbox.  Dovecot
# reads its passwd files again when they change.
sd_user=$MAIL_USER-sdbox
dvd=$(dirname "$DOVECOT_CONF")
pw_line=$(sed -n "s/^$MAIL_USER:/$sd_user:/p" "$dvd/passwd.TLS")
user_line=$(sed -n "s/^$MAIL_USER:\(.*\):\$/$sd_user:\1:userdb_mail=sdbox:~\/sdbox/p" "$dvd/users")
printf '%s\n' "$pw_line" >>"$dvd/passwd.TLS"
printf '%s\n' "$user_line" >>"$dvd/users"
sed "s/^    user = \"$MAIL_USER\";/    user = \"$sd_user\";/" "$conf" >"$dir/srv/ipcased-sdbox.conf"
# Dovecot looks at a passwd file again at most once a second.
for ((try = 0; try < 30; try++)); do
	doveadm -c "$DOVECOT_CONF" user "$sd_user" >/dev/null 2>&1 && break
	sleep 0.2
done
login_of() { [ "$1" = sdbox ] && echo "$sd_user" || echo "$MAIL_USER"; }
conf_of() { [ "$1" = sdbox ] && echo "$dir/srv/ipcased-sdbox.conf" || echo "$conf"; }

have=0
grow() {	# the mailbox holds $1 messages afterwards
	local store
	/usr/bin/python3 bench/genmail.py "$maildir" "$have" "$(( $1 - have ))" tests/samples
	chown -R "$owner" "$maildir"
	doveadm -c "$DOVECOT_CONF" force-resync -u "$MAIL_USER" INBOX
	case " $stores " in *" sdbox "*)
		# A copy, not a measurement: no fsync per message.
		doveadm -c "$DOVECOT_CONF" -o mail_fsync=never import -u "$sd_user" \
		    "maildir:$maildir" "" mailbox INBOX uid "$(( have + 1 )):*" || exit 1
	esac
	have=$1
	# Warm: Dovecot caches the header fields a client fetched once.
	for store in $stores; do
		/usr/bin/python3 bench/floor.py "$IMAP_PORT" "$CA_FILE" "$(login_of "$store")" \
		    "$MAIL_PASS_FILE" >/dev/null
	done
}

# The floor on store $1, timed as ipcased is (process start to exit); prints "messages bytes wall_s"
run_floor() {
	local out
	out=$(/usr/bin/time -o "$dir/time.out" -f '%e' /usr/bin/python3 bench/floor.py \
	    "$IMAP_PORT" "$CA_FILE" "$(login_of "$1")" "$MAIL_PASS_FILE") || return 1
	echo "$out $(tail -1 "$dir/time.out")"
}

# ipcased --once on store $1; prints "wall_s bytes parent_rss_kib fetcher_rss_kib cases"
run_daemon() {
	local log=$dir/daemon.log t
	/usr/bin/time -o "$dir/time.out" -f '%e' daemon/ipcased -c "$(conf_of "$1")" --once \
	    --foreground 2>"$log"
	t=$(tail -1 "$dir/time.out")
	local bytes prss frss
	bytes=$(sed -n 's/.*fetcher done: \([0-9]*\) bytes received.*/\1/p' "$log" | tail -1)
	frss=$(sed -n 's/.*fetcher done: .*peak RSS \([0-9]*\) KiB, private \([0-9-]*\) KiB.*/\1(\2)/p' "$log" | tail -1)
	prss=$(grep -v 'fetcher done' "$log" | sed -n 's/.*done: peak RSS \([0-9]*\) KiB, private \([0-9-]*\) KiB.*/\1(\2)/p' | tail -1)
	echo "$t ${bytes:-0} ${prss:-0} ${frss:-0}"
}

run_mbsync() {
	rm -rf "$dir/mbsync" && mkdir -p "$dir/mbsync"
	cat >"$dir/mbsyncrc" <<EOF
IMAPAccount bench
Host localhost
Port $IMAP_PORT
User $(login_of "${stores%% *}")
PassCmd "cat $MAIL_PASS_FILE"
SSLType IMAPS
CertificateFile $CA_FILE

IMAPStore remote
Account bench

MaildirStore local
Path $dir/mbsync/
Inbox $dir/mbsync/INBOX

Channel bench
Far :remote:
Near :local:
Patterns INBOX
Create Near
Sync Pull
SyncState *
EOF
	if ! /usr/bin/time -o "$dir/time.out" -f '%e' mbsync -q -c "$dir/mbsyncrc" bench \
	    >"$dir/mbsync.log" 2>&1; then
		sed 's/^/    mbsync: /' "$dir/mbsync.log" | head -5 >&2
		echo 0
		return
	fi
	tail -1 "$dir/time.out"
}

row() {	# messages store client wall_s msgs_per_s bytes_per_msg rss x_floor
	printf '%-8s %-8s %-20s %9s %10s %13s %24s %8s\n' "$@"
}
rate() { printf '%.0f' "$(echo "$1" | bc -l)"; }
row messages store client wall_s msgs_per_s bytes_per_msg rss_kib x_floor
for n in $sizes; do
	grow "$n"
	first_floor=
	for store in $stores; do
		# The machine is shared and one run can be a third off: each side
		# runs $runs times, in turns, and its median counts.  The ratio is
		# the median of each run's against the floor run just before it,
		# which shared its moment of the machine.
		fl=() dl=() xl=()
		for ((r = 0; r < runs; r++)); do
			fl+=("$(run_floor "$store")")
			rm -f "$dir/srv/state.db"*
			dl+=("$(run_daemon "$store")")
			xl+=("$(echo "${dl[r]%% *} / ${fl[r]##* }" | bc -l)")
		done
		read -r fm fb fs < <(printf '%s\n' "${fl[@]}" | sort -n -k3 | sed -n "$(( runs / 2 + 1 ))p")
		read -r dt db dp df < <(printf '%s\n' "${dl[@]}" | sort -n -k1 | sed -n "$(( runs / 2 + 1 ))p")
		x=$(printf '%s\n' "${xl[@]}" | sort -n | sed -n "$(( runs / 2 + 1 ))p")
		: "${first_floor:=$fs}"
		row "$n" "$store" "floor (floor.py)" "$fs" "$(rate "$n / $fs")" \
		    "$(rate "$fb / $n")" "-" "1.00"
		row "$n" "$store" "ipcased first scan" "$dt" "$(rate "$n / $dt")" \
		    "$(rate "$db / $n")" "$dp/$df" "$(printf '%.2f' "$x")"
		# The state of the last first scan stays: nothing new for this run.
		read -r it ib ip if < <(run_daemon "$store")
		row "$n" "$store" "ipcased idle poll" "$it" "-" "${ib}B total" "$ip/$if" "-"
	done
	if command -v mbsync >/dev/null && [ "$n" -ge 10000 ]; then
		mt=$(run_mbsync)
		row "$n" "${stores%% *}" "mbsync" "$mt" "$(rate "$n / $mt")" "-" "-" \
		    "$(printf '%.2f' "$(echo "$mt / $first_floor" | bc -l)")"
	fi
done
echo "rss_kib: parent/fetcher peak resident set in KiB (private, i.e. not shared-library pages, in brackets)"
echo "idle poll: a second --once with no new mail (connect, TLS, login, EXAMINE; no search)"
echo "first scan: process start to exit, reminders queued but not delivered (SMTP stopped),"
echo "median of $runs runs taken in turns with the floor's;"
echo "the floor is timed the same way (its interpreter's start counts as our process start does);"
echo "x_floor: median of each first scan's time over the floor run just before it, same store"
echo "(mbsync: over the median floor of the first store)"
