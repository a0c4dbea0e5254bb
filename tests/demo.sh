#!/bin/bash
# demo.sh — `make demo`: a private IMAP and SMTP server, a small demo mailbox, one ipcased run; shows the cases opened and the reminders sent.
#
# The demo mailbox is tests/demo/*.eml (delivered to INBOX; a file named
# sent_*.eml goes to Sent).  KEEP=1 keeps the work directory for a look around.
if [ -z "${BASH_VERSION:-}" ]; then
	exec bash "$0" "$@"
fi
set -u
cd "$(dirname "$0")/.." || exit 1
. tests/lib/servers.sh

PY=/usr/bin/python3
unset STATE_DIRECTORY CREDENTIALS_DIRECTORY

for p in daemon/ipcased daemon/ipcase; do
	[ -x "$p" ] || { echo "demo: $p is not built (run make)" >&2; exit 1; }
done

DIR=$(mktemp -d /tmp/ipcased-demo.XXXXXX) || exit 1
cleanup() {
	echo
	echo "Stopping the servers."
	servers_stop "$DIR"
	if [ "${KEEP:-0}" = 1 ]; then
		echo "Work directory kept: $DIR (config: $DIR/ipcased.conf)"
	else
		rm -rf "$DIR"
	fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# A one-line summary (From, Subject) of a message file, headers decoded.
summary() {
	"$PY" - "$@" <<'PY'
import email, email.policy, sys
for path in sys.argv[1:]:
    with open(path, "rb") as f:
        m = email.message_from_binary_file(f, policy=email.policy.default)
    frm = str(m.get("From", "")).replace("\n", " ")
    print("    %-52.52s  %s" % (frm, str(m.get("Subject", "")).replace("\n", " ")))
PY
}

echo "== ipcased demo =="
echo
echo "Starting a private Dovecot and a private SMTP receiver on 127.0.0.1 ..."
if ! servers_start "$DIR" >"$DIR/servers.log" 2>&1; then
	echo "demo: the servers did not start:" >&2
	cat "$DIR/servers.log" >&2
	exit 1
fi
echo "  IMAP (TLS):      imaps://127.0.0.1:$IMAP_PORT  user $MAIL_USER"
echo "  SMTP (STARTTLS): smtp://127.0.0.1:$SMTP_PORT   user $SMTP_USER"
write_config "$DIR" || exit 1

echo
echo "The seller's mailbox holds:"
for f in tests/demo/*.eml; do
	case "$(basename "$f")" in
	sent_*) folder=Sent ;;
	*) folder=INBOX ;;
	esac
	mail_append "$DIR" "$folder" "$f" || exit 1
	printf '  %-5s  ' "$folder"
	summary "$f" | sed 's/^    //'
done

echo
echo "Running: ipcased -c ipcased.conf --once --foreground"
if ! timeout 120 daemon/ipcased -c "$DIR/ipcased.conf" --once --foreground >"$DIR/ipcased.log" 2>&1 </dev/null; then
	echo "demo: ipcased failed; its log:" >&2
	cat "$DIR/ipcased.log" >&2
	exit 1
fi
echo "  done ($(wc -l <"$DIR/ipcased.log") log lines; run with KEEP=1 to keep them)"

echo
echo "Cases (ipcase list --all):"
daemon/ipcase -c "$DIR/ipcased.conf" list --all 2>&1 | sed 's/^/  /'

echo
n=$(grep -c . "$SMTP_LOG")
echo "Mail delivered to the seller ($n):"
"$PY" - "$SMTP_LOG" <<'PY'
import email, email.policy, json, sys
for line in open(sys.argv[1], encoding="utf-8"):
    if not line.strip():
        continue
    e = json.loads(line)
    with open(e["file"], "rb") as f:
        m = email.message_from_binary_file(f, policy=email.policy.default)
    print("  To %s:  %s" % (", ".join(e.get("rcpt_tos", [])),
                           str(m.get("Subject", "")).replace("\n", " ")))
PY
exit 0
