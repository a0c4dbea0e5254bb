#!/bin/sh
# t_imap.sh — runs tests/test_imap against a private Dovecot with TLS and a CA made here.
#
# Usage: sh tests/t_imap.sh [TEST_BINARY [cmocka args]]   (default: tests/test_imap)
# test_imap re-executes itself through this script when IMAPT_DIR is unset, so
# `make check` needs nothing else.  Everything lives in a temporary directory
# that is removed afterwards, and Dovecot is stopped on every exit path.
set -u

here=$(cd "$(dirname "$0")" && pwd)
bin=${1:-$here/test_imap}
[ $# -gt 0 ] && shift
PY=/usr/bin/python3

dir=$(mktemp -d /tmp/imapt.XXXXXX) || exit 1
# Dovecot's unix sockets must stay under 107 bytes: a short base_dir.
base=$(mktemp -d /tmp/dvb.XXXXXX) || exit 1
dovecot_conf=$dir/dovecot.conf
started=0

cleanup() {
	if [ "$started" = 1 ]; then
		doveadm -c "$dovecot_conf" stop >/dev/null 2>&1
		# doveadm stop returns before the master is gone; wait for it.
		if [ -f "$base/master.pid" ]; then
			pid=$(cat "$base/master.pid")
			i=0
			while kill -0 "$pid" 2>/dev/null && [ $i -lt 50 ]; do
				sleep 0.1; i=$((i + 1))
			done
			kill -9 "$pid" 2>/dev/null
		fi
	fi
	rm -rf "$dir" "$base"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- certificates: never committed, made fresh for each run --------------
cd "$dir" || exit 1
chmod 755 "$dir"
mkca() {	# name
	openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=ipcased test $1" \
	    -keyout "$1.key" -out "$1.pem" \
	    -addext basicConstraints=critical,CA:TRUE \
	    -addext keyUsage=critical,keyCertSign,cRLSign >/dev/null 2>&1
}
mkcert() {	# name ca san
	openssl req -newkey rsa:2048 -nodes -subj "/CN=$1" -keyout "$1.key" \
	    -out "$1.csr" >/dev/null 2>&1 &&
	printf 'subjectAltName=%s\nextendedKeyUsage=serverAuth\nbasicConstraints=CA:FALSE\n' \
	    "$3" >"$1.ext" &&
	openssl x509 -req -in "$1.csr" -CA "$2.pem" -CAkey "$2.key" -CAcreateserial \
	    -days 2 -extfile "$1.ext" -out "$1.pem" >/dev/null 2>&1 &&
	openssl x509 -in "$1.pem" -outform DER -out "$1.der"
}
mkca ca && mkca rogueca &&
mkcert server ca 'DNS:localhost,IP:127.0.0.1' &&
mkcert other ca 'DNS:other.example' &&
mkcert rogue rogueca 'DNS:localhost,IP:127.0.0.1' &&
mkcert client ca 'DNS:localhost' &&
openssl x509 -in ca.pem -outform DER -out ca.der || { echo "t_imap.sh: openssl failed" >&2; exit 1; }
# A client-purpose certificate for the key-purpose check.
printf 'subjectAltName=DNS:localhost\nextendedKeyUsage=clientAuth\n' >client.ext
openssl x509 -req -in client.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 \
    -extfile client.ext -out client.pem >/dev/null 2>&1 &&
openssl x509 -in client.pem -outform DER -out client.der || exit 1

# --- Dovecot --------------------------------------------------------------
user=seller
pass=imap-test-pw
mkdir -p home state
# Dovecot refuses mail access as root: as root, mail and internal users are nobody.
if [ "$(id -u)" = 0 ]; then
	run_user=nobody; run_group=nogroup
	chown nobody:nogroup home
else
	run_user=$(id -un); run_group=$(id -gn)
fi
printf '%s:{PLAIN}%s::::::\n' "$user" "$pass" >passwd

free_port() {	# a port below the ephemeral range that nothing listens on
	$PY - <<'EOF'
import random, socket
for _ in range(200):
    p = random.randint(20000, 30999)
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", p))
    except OSError:
        continue
    finally:
        s.close()
    print(p)
    break
EOF
}

write_conf() {
	cat >"$dovecot_conf" <<EOF
base_dir = $base
state_dir = $dir/state
log_path = $dir/dovecot.log
info_log_path = $dir/dovecot.log
auth_verbose = yes
auth_failure_delay = 0
protocols = imap
listen = 127.0.0.1
ssl = yes
ssl_cert = <$dir/server.pem
ssl_key = <$dir/server.key
disable_plaintext_auth = no
default_internal_user = $run_user
default_internal_group = $run_group
default_login_user = $run_user
mail_location = maildir:~/Maildir
first_valid_uid = 1
auth_mechanisms = plain login
passdb {
  driver = passwd-file
  args = scheme=PLAIN username_format=%u $dir/passwd
}
userdb {
  driver = static
  args = uid=$run_user gid=$run_group home=$dir/home/%u
}
namespace inbox {
  inbox = yes
  separator = /
  mailbox Sent {
    special_use = \\Sent
    auto = create
  }
  mailbox Drafts {
    special_use = \\Drafts
    auto = create
  }
}
service imap-login {
  chroot =
  inet_listener imap {
    port = $port_plain
  }
  inet_listener imaps {
    port = $port_tls
    ssl = yes
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
service imap-urlauth-login {
  chroot =
}
service pop3-login {
  chroot =
}
service submission-login {
  chroot =
}
service managesieve-login {
  chroot =
}
EOF
}

tries=0
while :; do
	tries=$((tries + 1))
	port_tls=$(free_port); port_plain=$(free_port)
	write_conf
	# Dovecot keeps its launcher's stderr open: redirect, never capture.
	if dovecot -c "$dovecot_conf" >"$dir/dovecot.start" 2>&1; then
		started=1
		i=0
		while [ $i -lt 50 ]; do
			if $PY -c "import socket,sys; s=socket.create_connection(('127.0.0.1', $port_tls), 1); s.close()" 2>/dev/null; then
				break
			fi
			sleep 0.1; i=$((i + 1))
		done
		[ $i -lt 50 ] && break
	fi
	if [ $tries -ge 5 ]; then
		echo "t_imap.sh: dovecot did not start:" >&2
		cat "$dir/dovecot.start" "$dir/dovecot.log" >&2 2>/dev/null
		exit 1
	fi
	[ "$started" = 1 ] && doveadm -c "$dovecot_conf" stop >/dev/null 2>&1
	started=0
	sleep 0.2
done

export IMAPT_DIR="$dir" IMAPT_CONF="$dovecot_conf" IMAPT_LOG="$dir/dovecot.log"
export IMAPT_PORT="$port_tls" IMAPT_PORT_PLAIN="$port_plain"
export IMAPT_USER="$user" IMAPT_PASS="$pass"
export IMAPT_FAKE="$here/imap_fake.py" IMAPT_PYTHON="$PY"
cd "$here/.." || exit 1
"$bin" "$@"
rc=$?
if [ $rc -ne 0 ] && [ -n "${IMAPT_SHOW_LOG:-}" ]; then
	echo "--- dovecot.log" >&2
	cat "$dir/dovecot.log" >&2
fi
exit $rc
