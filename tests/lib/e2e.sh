# e2e.sh — the set-up the end-to-end scripts share: program paths, a work directory kept only on failure, the private servers, the test config; source it after tap.sh and servers.sh.
# shellcheck shell=bash
#
#   e2e_init TAG           PY, IPCASED, IPCASE; DIR=/tmp/ipcased-TAG.XXXXXX; the EXIT
#                          trap (e2e_cleanup) and INT/TERM -> exit 130.  A script that
#                          starts processes of its own defines e2e_stop_own: the
#                          cleanup calls it before it stops the servers.
#   e2e_require_built      bails unless $IPCASED and $IPCASE are built
#   e2e_servers_start [--no-ok]
#                          servers_start into $DIR (log: $DIR/servers.log), bails on
#                          failure; an ok line naming the ports unless --no-ok
#   e2e_config [--check]   write_config into $DIR and CONF=$DIR/ipcased.conf; with
#                          --check an ok line for `ipcased --check-config`, bails if not
# KEEP=1 keeps the work directory (kept anyway on failure).

# PY and IPCASE are for the scripts that source this.
# shellcheck disable=SC2034
e2e_init() {
	PY=/usr/bin/python3
	IPCASED=daemon/ipcased
	IPCASE=daemon/ipcase
	# The relative paths of the test config must resolve to its own directory.
	unset STATE_DIRECTORY CREDENTIALS_DIRECTORY
	DIR=$(mktemp -d "/tmp/ipcased-$1.XXXXXX") || exit 1
	trap e2e_cleanup EXIT
	trap 'exit 130' INT TERM
}

e2e_cleanup() {
	if declare -F e2e_stop_own >/dev/null; then
		e2e_stop_own
	fi
	servers_stop "$DIR"
	if [ "$TAP_FAILED" -eq 0 ] && [ "${KEEP:-0}" != 1 ]; then
		rm -rf "$DIR"
	else
		echo "# work directory kept: $DIR"
	fi
}

e2e_require_built() {
	[ -x "$IPCASED" ] && [ -x "$IPCASE" ] || tap_bail "$IPCASED and $IPCASE are built"
}

e2e_servers_start() {
	servers_start "$DIR" >"$DIR/servers.log" 2>&1 ||
	    tap_bail "private Dovecot and SMTP server start" "$DIR/servers.log"
	[ "${1:-}" = --no-ok ] ||
	    tap_ok 0 "private Dovecot (imaps 127.0.0.1:$IMAP_PORT) and SMTP (127.0.0.1:$SMTP_PORT) started"
}

e2e_config() {
	write_config "$DIR" >"$DIR/config.log" 2>&1 || tap_bail "test config written" "$DIR/config.log"
	CONF=$DIR/ipcased.conf
	if [ "${1:-}" = --check ]; then
		tap_run "ipcased --check-config accepts the test config" "$IPCASED" -c "$CONF" --check-config ||
		    tap_bail "the test config is usable"
	fi
}
