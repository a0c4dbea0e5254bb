#!/bin/sh
# deps.sh — install the Debian packages that build, test and demo ipcased need (quiet when all present).
set -eu

# One list, so new needs are added in one place.
PACKAGES="build-essential pkg-config libetpan-dev libcurl4-gnutls-dev libconfig-dev
	libsqlite3-dev libsystemd-dev libpcre2-dev libcmocka-dev libgmime-3.0-dev
	libjson-c-dev libxml2-dev libsasl2-modules dovecot-imapd python3 python3-aiosmtpd
	openssl sqlite3 valgrind clang libclang-rt-14-dev curl faketime strace
	man-db groff-base systemd"

missing=""
for p in $PACKAGES; do
	# dpkg-query exits 0 for removed-but-configured packages too: check the status word.
	st=$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)
	[ "$st" = "installed" ] || missing="$missing $p"
done
[ -z "$missing" ] && exit 0

if [ "$(id -u)" -eq 0 ]; then
	SUDO=""
else
	SUDO="sudo"
fi
echo "deps.sh: installing:$missing" >&2
# The system Dovecot must not start: in a container policy-rc.d usually forbids it,
# and our tests start their own private instances anyway.
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null
# shellcheck disable=SC2086
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing >/dev/null
