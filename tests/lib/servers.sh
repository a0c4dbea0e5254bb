# servers.sh — private Dovecot (IMAPS) and SMTP (STARTTLS + AUTH) servers on 127.0.0.1 for tests; source it.
# shellcheck shell=bash
#
#   servers_start DIR        start both; exports IMAP_PORT SMTP_PORT CA_FILE DOVECOT_CONF ...
#   servers_stop DIR         stop both (idempotent; use in an EXIT trap)
#   servers_env DIR          re-export the variables of a running DIR (another shell)
#   mail_append DIR FOLDER FILE...   deliver files into FOLDER (doveadm save)
#   mail_flags DIR FOLDER    "uid flags" per message, flags sorted, \Recent left out
#   write_config DIR         DIR/ipcased.conf for these servers (+ a copy of conf/rules.conf)
#   servers_stop_dovecot DIR     stop Dovecot alone, sessions included (config and port kept)
#   servers_start_dovecot DIR    start it again with the same config and port
#   servers_restart_dovecot DIR [PAUSE]  both, PAUSE seconds apart (default 0)
#
# SERVERS_DOVECOT_OAUTH=URL (set before servers_start) adds XOAUTH2: an oauth2
# passdb that checks tokens at the introspection URL URL (e.g. tests/lib/idp.py),
# the password passdb restricted to PLAIN and LOGIN so a token is never taken
# for a password.
#
# Everything lives under DIR except Dovecot's base_dir (sockets), which goes to a
# short /tmp/ipcdv.XXXXXX because a unix socket path is limited to 107 bytes.
# Never touches the system Dovecot, never kills by name: only pids recorded here.

SERVERS_LIB_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SERVERS_REPO=$(cd "$SERVERS_LIB_DIR/../.." && pwd)
SERVERS_PY=/usr/bin/python3
SERVERS_SMTP_PY=${SERVERS_SMTP_PY:-$SERVERS_REPO/tests/smtp_server.py}

_srv_log() { echo "servers: $*" >&2; }

# A port below the ephemeral range that nobody holds right now.  Another suite may
# grab it before our server binds: the callers retry on a failed start.
_srv_free_port() {
	"$SERVERS_PY" - <<'PY'
import random, socket
for _ in range(200):
    p = random.randint(20000, 32000)
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.bind(("127.0.0.1", p))
    except OSError:
        continue
    finally:
        s.close()
    print(p)
    break
else:
    raise SystemExit("no free port")
PY
}

# Waits until something accepts TCP on 127.0.0.1:$1, at most $2 seconds.
_srv_wait_port() {
	"$SERVERS_PY" - "$1" "$2" <<'PY'
import socket, sys, time
port, limit = int(sys.argv[1]), float(sys.argv[2])
end = time.time() + limit
while time.time() < end:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        sys.exit(0)
    except OSError:
        time.sleep(0.05)
sys.exit(1)
PY
}

# Is pid $1 alive and its command line mentioning $2?  Guards against pid reuse.
_srv_pid_is() {
	[ -n "$1" ] && [ -r "/proc/$1/cmdline" ] && tr '\0' ' ' 2>/dev/null <"/proc/$1/cmdline" | grep -qF -- "$2"
}

_srv_certs() {
	local t="$1/tls"
	mkdir -p "$t"
	(
		umask 077
		openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=ipcased test CA" \
		    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
		    -keyout "$t/ca.key" -out "$t/ca.pem"
		openssl req -newkey rsa:2048 -nodes -subj "/CN=localhost" \
		    -keyout "$t/server.key" -out "$t/server.csr"
		printf '%s\n' "subjectAltName=DNS:localhost,IP:127.0.0.1" \
		    "basicConstraints=CA:FALSE" "keyUsage=digitalSignature,keyEncipherment" \
		    "extendedKeyUsage=serverAuth" >"$t/server.ext"
		openssl x509 -req -in "$t/server.csr" -CA "$t/ca.pem" -CAkey "$t/ca.key" \
		    -CAcreateserial -days 2 -extfile "$t/server.ext" -out "$t/server.pem"
	) >"$t/openssl.log" 2>&1 || { cat "$t/openssl.log" >&2; return 1; }
	chmod 644 "$t/ca.pem" "$t/server.pem"
}

_srv_dovecot_conf() {
	local dir="$1" port="$2" base="$3"
	local d="$dir/dovecot" run_user run_group mail_uid mail_gid dh=""
	if [ "$(id -u)" -eq 0 ]; then
		# Dovecot refuses mail access as root: the mailbox belongs to nobody.
		run_user=nobody
		run_group=$(id -gn nobody)
		mail_uid=$(id -u nobody)
		mail_gid=$(id -g nobody)
	else
		run_user=$(id -un)
		run_group=$(id -gn)
		mail_uid=$(id -u)
		mail_gid=$(id -g)
	fi
	[ -r /usr/share/dovecot/dh.pem ] && dh="ssl_dh = </usr/share/dovecot/dh.pem"
	local oauth_mech="" pw_mechs="" oauth_passdb=""
	if [ -n "${SERVERS_DOVECOT_OAUTH:-}" ]; then
		# Without the restriction a bearer token would also be tried as a password.
		oauth_mech=" xoauth2"
		pw_mechs="  mechanisms = plain login
"
		oauth_passdb="passdb {
  driver = oauth2
  mechanisms = xoauth2
  args = $d/dovecot-oauth2.conf.ext
}"
	fi
	cat >"$DOVECOT_CONF" <<EOF
# Private test instance written by tests/lib/servers.sh; not the system Dovecot.
base_dir = $base
state_dir = $d/state
instance_name = ipcased-test-$port
log_path = $d/dovecot.log
auth_verbose = yes
protocols = imap
listen = 127.0.0.1
default_internal_user = $run_user
default_login_user = $run_user
default_internal_group = $run_group
first_valid_uid = 1
ssl = required
ssl_cert = <$dir/tls/server.pem
ssl_key = <$dir/tls/server.key
ssl_min_protocol = TLSv1.2
$dh
auth_mechanisms = plain login$oauth_mech
mail_location = maildir:~/Maildir
# Only passwd.TLS exists: a login without TLS finds no user, even on loopback.
passdb {
  driver = passwd-file
  args = scheme=PLAIN username_format=%u $d/passwd.%{secured}
$pw_mechs}
$oauth_passdb
userdb {
  driver = passwd-file
  args = username_format=%u $d/users
}
namespace inbox {
  inbox = yes
  separator = /
  mailbox Sent {
    special_use = \Sent
    auto = subscribe
  }
}
service imap-login {
  chroot =
  inet_listener imap {
    port = 0
  }
  inet_listener imaps {
    address = 127.0.0.1
    port = $port
  }
}
service anvil {
  chroot =
  unix_listener anvil-auth-penalty {
    mode = 0
  }
}
service ipc {
  chroot =
}
service aggregator {
  chroot =
}
service old-stats {
  chroot =
}
service imap-urlauth-login {
  chroot =
}
EOF
	if [ -n "${SERVERS_DOVECOT_OAUTH:-}" ]; then
		printf '%s\n' "introspection_mode = post" "introspection_url = $SERVERS_DOVECOT_OAUTH" \
		    "username_attribute = username" "timeout_msecs = 5000" >"$d/dovecot-oauth2.conf.ext"
		chmod 644 "$d/dovecot-oauth2.conf.ext"
	fi
	mkdir -p "$d/state" "$dir/mail/$MAIL_USER"
	(umask 077; printf '%s:%s:%s:%s::%s::\n' "$MAIL_USER" "$MAIL_PASS" "$mail_uid" "$mail_gid" \
	    "$dir/mail/$MAIL_USER" >"$d/passwd.TLS")
	printf '%s::%s:%s::%s::\n' "$MAIL_USER" "$mail_uid" "$mail_gid" "$dir/mail/$MAIL_USER" >"$d/users"
	chown -R "$mail_uid:$mail_gid" "$dir/mail"
	# Dovecot's processes running as nobody must reach the mailbox and the users file.
	chmod 711 "$dir" "$dir/mail" "$d"
	chmod 644 "$d/users"
	if [ "$(id -u)" -eq 0 ]; then
		chown root:"$mail_gid" "$d/passwd.TLS"
		chmod 640 "$d/passwd.TLS"
	fi
}

_srv_start_dovecot() {
	local dir="$1" try port base
	for try in 1 2 3 4 5; do
		port=$(_srv_free_port) || return 1
		base=$(mktemp -d /tmp/ipcdv.XXXXXX) || return 1
		chmod 755 "$base"
		echo "$base" >"$dir/dovecot/base_dir"
		_srv_dovecot_conf "$dir" "$port" "$base"
		# Dovecot keeps its launcher's stderr open: never let it inherit a pipe.
		if dovecot -c "$DOVECOT_CONF" </dev/null >>"$dir/dovecot/start.log" 2>&1 &&
		    _srv_wait_port "$port" 10; then
			IMAP_PORT=$port
			DOVECOT_BASE=$base
			return 0
		fi
		_srv_log "dovecot on port $port failed (try $try), see $dir/dovecot"
		_srv_stop_dovecot "$dir"
	done
	tail -n 20 "$dir/dovecot/start.log" "$dir/dovecot/dovecot.log" >&2 2>/dev/null
	return 1
}

# The base_dir is found from DIR, or, should DIR be gone already, from
# $DOVECOT_BASE when its dovecot.conf link still names DIR.
_srv_stop_dovecot() {
	local dir="$1" conf="$1/dovecot/dovecot.conf" base="" pid
	if [ -r "$dir/dovecot/base_dir" ]; then
		base=$(cat "$dir/dovecot/base_dir")
	elif [ -n "${DOVECOT_BASE:-}" ] && [ "$(readlink "$DOVECOT_BASE/dovecot.conf" 2>/dev/null)" = "$conf" ]; then
		base=$DOVECOT_BASE
	fi
	[ -n "$base" ] || return 0
	pid=$(cat "$base/master.pid" 2>/dev/null || true)
	if _srv_pid_is "$pid" "$conf"; then
		if [ ! -r "$conf" ] || ! timeout 10 doveadm -c "$conf" stop </dev/null >/dev/null 2>&1; then
			kill -TERM "$pid" 2>/dev/null
		fi
		for _ in $(seq 100); do
			_srv_pid_is "$pid" "$conf" || break
			sleep 0.1
		done
		_srv_pid_is "$pid" "$conf" && kill -KILL "$pid" 2>/dev/null
	fi
	case "$base" in
	/tmp/ipcdv.*) rm -rf "$base" ;;
	esac
	rm -f "$dir/dovecot/base_dir"
	return 0
}

# Stops the Dovecot of DIR like a server shutdown would: master, login and
# auth processes and the IMAP sessions (which outlive `doveadm stop` on their
# own).  Config, port and mail stay, for servers_start_dovecot.  Only pids that
# are children of this instance's master are signalled.
servers_stop_dovecot() {
	local dir="$1" conf="$1/dovecot/dovecot.conf" base pid kids k
	base=$(cat "$dir/dovecot/base_dir" 2>/dev/null) || { _srv_log "no dovecot in $dir"; return 1; }
	pid=$(cat "$base/master.pid" 2>/dev/null || true)
	_srv_pid_is "$pid" "$conf" || { _srv_log "dovecot of $dir is not running"; return 1; }
	kids=$(ps -o pid= --ppid "$pid" 2>/dev/null | tr -d ' ')
	timeout 10 doveadm -c "$conf" stop </dev/null >/dev/null 2>&1 || kill -TERM "$pid" 2>/dev/null
	for _ in $(seq 100); do
		_srv_pid_is "$pid" "$conf" || break
		sleep 0.05
	done
	_srv_pid_is "$pid" "$conf" && kill -KILL "$pid" 2>/dev/null
	# A session whose client does not read cannot say BYE and lingers: gone with the server.
	for k in $kids; do
		_srv_pid_is "$k" dovecot && kill -KILL "$k" 2>/dev/null
	done
	# A stale anvil-auth-penalty socket would cost the next start a 5 s retry.
	case "$base" in
	/tmp/ipcdv.*) find "$base" -mindepth 1 -delete 2>/dev/null ;;
	esac
	return 0
}

# Starts the Dovecot of DIR again after servers_stop_dovecot: same config, same port.
servers_start_dovecot() {
	local dir="$1" conf="$1/dovecot/dovecot.conf" port
	port=$(sed -n '/inet_listener imaps/,/}/s/^ *port = \([0-9][0-9]*\)$/\1/p' "$conf")
	[ -n "$port" ] || { _srv_log "no imaps port in $conf"; return 1; }
	dovecot -c "$conf" </dev/null >>"$dir/dovecot/start.log" 2>&1 &&
	    _srv_wait_port "$port" 10 || { _srv_log "dovecot of $dir did not start again"; return 1; }
}

servers_restart_dovecot() {
	servers_stop_dovecot "$1" || return 1
	sleep "${2:-0}"
	servers_start_dovecot "$1"
}

# The server binds port 0 itself and writes the port the kernel chose to a
# file: no race with a parallel suite.  --parent-pid makes it exit with the
# test shell even if no trap runs (SIGKILL).
_srv_start_smtp() {
	local dir="$1" pid s="$1/smtp"
	mkdir -p "$s/mail"
	: >"$s/envelopes.jsonl"
	rm -f "$s/port"
	"$SERVERS_PY" "$SERVERS_SMTP_PY" \
	    --host 127.0.0.1 --port 0 --port-file "$s/port" \
	    --cert "$dir/tls/server.pem" --key "$dir/tls/server.key" \
	    --user "$SMTP_USER" --password-file "$dir/smtp.pass" \
	    --maildir "$s/mail" --log "$s/envelopes.jsonl" --command-log "$s/commands.log" \
	    --parent-pid "$$" \
	    </dev/null >>"$s/server.log" 2>&1 &
	pid=$!
	echo "$pid" >"$s/pid"
	for _ in $(seq 100); do
		[ -s "$s/port" ] && break
		_srv_pid_is "$pid" "$s/envelopes.jsonl" || break
		sleep 0.1
	done
	if [ -s "$s/port" ] && _srv_wait_port "$(cat "$s/port")" 5; then
		SMTP_PORT=$(cat "$s/port")
		SMTP_PID=$pid
		return 0
	fi
	tail -n 20 "$s/server.log" >&2
	_srv_stop_smtp "$dir"
	return 1
}

_srv_stop_smtp() {
	local dir="$1" pid s="$1/smtp"
	pid=$(cat "$s/pid" 2>/dev/null || true)
	# Without a pid file, SMTP_PID may be another directory's server (the
	# last one started): only this directory's own is stopped and reaped.
	if [ -z "$pid" ]; then
		pid=${SMTP_PID:-}
		_srv_pid_is "$pid" "$s/envelopes.jsonl" || return 0
	fi
	if _srv_pid_is "$pid" "$s/envelopes.jsonl"; then
		kill -TERM "$pid" 2>/dev/null
		for _ in $(seq 50); do
			_srv_pid_is "$pid" "$s/envelopes.jsonl" || break
			sleep 0.1
		done
		_srv_pid_is "$pid" "$s/envelopes.jsonl" && kill -KILL "$pid" 2>/dev/null
	fi
	# Reap it if it is our child, so no zombie outlives the test.
	wait "$pid" 2>/dev/null
	rm -f "$s/pid"
	return 0
}

servers_env() {
	local dir="$1"
	[ -r "$dir/servers.env" ] || { _srv_log "no servers in $dir"; return 1; }
	# shellcheck disable=SC1091
	. "$dir/servers.env"
}

servers_start() {
	local dir="$1"
	[ -n "$dir" ] || { _srv_log "usage: servers_start DIR"; return 2; }
	mkdir -p "$dir/dovecot" || return 1
	dir=$(cd "$dir" && pwd)
	# .ci/run stops whatever a killed test left running, from this list.
	[ -n "${IPCASED_SERVERS_REGISTRY:-}" ] && echo "$dir" >>"$IPCASED_SERVERS_REGISTRY"
	SERVERS_DIR=$dir
	MAIL_USER=seller
	SMTP_USER=ipcased
	MAIL_PASS=$(openssl rand -hex 12)
	SMTP_PASS=$(openssl rand -hex 12)
	(
		umask 077
		printf '%s\n' "$MAIL_PASS" >"$dir/imap.pass"
		printf '%s\n' "$SMTP_PASS" >"$dir/smtp.pass"
	)
	MAIL_PASS_FILE=$dir/imap.pass
	SMTP_PASS_FILE=$dir/smtp.pass
	DOVECOT_CONF=$dir/dovecot/dovecot.conf
	DOVECOT_LOG=$dir/dovecot/dovecot.log
	CA_FILE=$dir/tls/ca.pem
	SMTP_LOG=$dir/smtp/envelopes.jsonl
	SMTP_MAILDIR=$dir/smtp/mail
	_srv_certs "$dir" || { _srv_log "certificate generation failed"; return 1; }
	_srv_start_dovecot "$dir" || { _srv_log "dovecot did not start"; return 1; }
	_srv_start_smtp "$dir" || { _srv_log "smtp server did not start"; _srv_stop_dovecot "$dir"; return 1; }
	cat >"$dir/servers.env" <<EOF
SERVERS_DIR='$dir'
IMAP_PORT=$IMAP_PORT
SMTP_PORT=$SMTP_PORT
SMTP_PID=$SMTP_PID
CA_FILE='$CA_FILE'
DOVECOT_CONF='$DOVECOT_CONF'
DOVECOT_LOG='$DOVECOT_LOG'
DOVECOT_BASE='$DOVECOT_BASE'
MAIL_USER=$MAIL_USER
MAIL_PASS=$MAIL_PASS
MAIL_PASS_FILE='$MAIL_PASS_FILE'
SMTP_USER=$SMTP_USER
SMTP_PASS=$SMTP_PASS
SMTP_PASS_FILE='$SMTP_PASS_FILE'
SMTP_LOG='$SMTP_LOG'
SMTP_MAILDIR='$SMTP_MAILDIR'
SMTP_COMMANDS='$dir/smtp/commands.log'
export SERVERS_DIR IMAP_PORT SMTP_PORT SMTP_PID CA_FILE DOVECOT_CONF DOVECOT_LOG DOVECOT_BASE MAIL_USER MAIL_PASS
export MAIL_PASS_FILE SMTP_USER SMTP_PASS SMTP_PASS_FILE SMTP_LOG SMTP_MAILDIR SMTP_COMMANDS
EOF
	servers_env "$dir"
}

# Works even when DIR was removed under a running test (pids kept in variables).
servers_stop() {
	local dir="$1"
	[ -n "$dir" ] || return 0
	_srv_stop_smtp "$dir"
	_srv_stop_dovecot "$dir"
	return 0
}

mail_append() {
	local dir="$1" folder="$2" f
	shift 2
	for f in "$@"; do
		doveadm -c "$dir/dovecot/dovecot.conf" save -u seller -m "$folder" <"$f" ||
		    { _srv_log "doveadm save $f into $folder failed"; return 1; }
	done
}

# \Recent is a session flag that any SELECT clears; it is not something a client sets.
mail_flags() {
	local dir="$1" folder="$2"
	doveadm -c "$dir/dovecot/dovecot.conf" -f tab fetch -u seller 'uid flags' mailbox "$folder" all |
	    "$SERVERS_PY" -c '
import sys
lines = sys.stdin.read().splitlines()
for line in lines[1:]:
    if not line.strip():
        continue
    uid, _, flags = line.partition("\t")
    fl = sorted(f for f in flags.split() if f != "\\Recent")
    print(uid, " ".join(fl))
'
}

write_config() {
	local dir="$1"
	servers_env "$dir" || return 1
	cp "$SERVERS_REPO/conf/rules.conf" "$dir/rules.conf" || return 1
	cat >"$dir/ipcased.conf" <<EOF
# Written by tests/lib/servers.sh for the private test servers.  Paths are
# relative to this file's directory.
state = "state.db";
poll_interval = 60;
accounts = (
  { name = "shop";
    host = "127.0.0.1"; port = $IMAP_PORT;
    tls = "implicit";
    user = "$MAIL_USER";
    auth = "login";
    password_file = "imap.pass";
    ca_file = "tls/ca.pem";
    folders = [ "INBOX" ];
    sent_folder = "Sent";
    initial_scan_days = 0;
    timeout = 20;
    authserv_ids = [ "mx.seller-mail.example" ];
  }
);
smtp = {
  url = "smtp://127.0.0.1:$SMTP_PORT";
  user = "$SMTP_USER"; password_file = "smtp.pass"; ca_file = "tls/ca.pem";
  from = "ipcased@shop.example";
  to = [ "ops@shop.example" ];
  timeout = 20;
};
# Deterministic tests: no quiet hours, no digest, no folding into a digest.
reminders = {
  max_per_hour = 10000;
  quiet_hours = "";
  digest_hour = -1;
  timezone = "UTC";
};
@include "rules.conf"
EOF
	chmod 600 "$dir/imap.pass" "$dir/smtp.pass"
}
