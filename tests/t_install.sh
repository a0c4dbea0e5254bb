#!/bin/bash
# t_install.sh — `make install`/`uninstall` into a DESTDIR, the man pages, and the systemd unit's checks.
#
# Run by `make check` after the build, from the repository root.  It does not
# build: when daemon/ipcased or daemon/ipcase is missing or older than its
# sources it says so and stops, so that it never compiles behind the back of
# a parallel build.
if [ -z "${BASH_VERSION:-}" ]; then
	exec bash "$0" "$@"
fi
set -u

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT" || exit 1
. tests/lib/tap.sh

# Exposure that `systemd-analyze security` may report for the unit, at most.
MAX_EXPOSURE=1.5
PAGES="man8/ipcased.8 man1/ipcase.1 man5/ipcased.conf.5"

for p in daemon/ipcased daemon/ipcase; do
	if [ ! -x "$p" ]; then
		tap_bail "$p not built (run make first)"
	fi
done
# `make install` depends on `all`: it must find nothing to rebuild.
if ! make -s -q -C "$ROOT" daemon/ipcased daemon/ipcase >/dev/null 2>&1; then
	tap_bail "daemon/ipcased or daemon/ipcase is older than its sources (run make first)"
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/ipcased-install.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT
dest="$tmp/root"
log="$tmp/log"
mkdir -p "$dest"

do_make() {
	make -s -C "$ROOT" "$@" DESTDIR="$dest" PREFIX=/usr >"$log" 2>&1
}

# mode FILE: its permission bits in octal, e.g. 644.
mode() {
	stat -c %a "$1"
}

# check_file PATH MODE: PATH (below $dest) exists as a regular file with MODE.
check_file() {
	local f="$dest$1" want="$2" got
	if [ ! -f "$f" ]; then
		echo "missing: $1"
		return 1
	fi
	got=$(mode "$f")
	if [ "$got" != "$want" ]; then
		echo "$1: mode $got, expected $want"
		return 1
	fi
	return 0
}

# ---- install ---------------------------------------------------------------

do_make install
tap_ok $? "make install DESTDIR=... PREFIX=/usr" "$log" || tap_bail "nothing installed"

out="$tmp/files"
{
	check_file /usr/sbin/ipcased 755
	check_file /usr/bin/ipcase 755
	check_file /usr/libexec/ipcased/ipcased-fetch 755
	check_file /usr/libexec/ipcased/ipcased-send 755
	check_file /lib/systemd/system/ipcased.service 644
	check_file /etc/ipcased/ipcased.conf 640
} >"$out" 2>&1
[ ! -s "$out" ]
tap_ok $? "binaries (0755), helpers in /usr/libexec/ipcased (0755), unit (0644) and /etc/ipcased/ipcased.conf (0640) installed" "$out"

cmp -s daemon/ipcased "$dest/usr/sbin/ipcased" && cmp -s daemon/ipcase "$dest/usr/bin/ipcase" &&
    cmp -s daemon/ipcased-fetch "$dest/usr/libexec/ipcased/ipcased-fetch" &&
    cmp -s daemon/ipcased-send "$dest/usr/libexec/ipcased/ipcased-send"
tap_ok $? "installed binaries are the built ones"

# The installed daemon finds its installed helpers (../libexec/ipcased from
# its own place), not the build tree's: one pass against closed ports.
run=$tmp/run
mkdir -p "$run"
printf 'secret\n' >"$run/imap.pass"
chmod 600 "$run/imap.pass"
cp conf/rules.conf "$run/rules.conf"
cat >"$run/ipcased.conf" <<'EOF'
state = "state.db";
accounts = ( { name = "shop"; host = "127.0.0.1"; port = 1; tls = "none";
  user = "seller"; password_file = "imap.pass"; timeout = 5; } );
smtp = { url = "smtp://127.0.0.1:1"; from = "ipcased@shop.example"; to = [ "ops@shop.example" ]; };
@include "rules.conf"
EOF
env -u IPCASED_LIBEXEC "$dest/usr/sbin/ipcased" -c "$run/ipcased.conf" --once --foreground \
    >"$run/log" 2>&1
grep -q "shop: .*127.0.0.1" "$run/log" && ! grep -q "cannot run" "$run/log"
tap_ok $? "the installed daemon runs its installed fetcher (a connection refused, logged)" "$run/log"

cmp -s conf/ipcased.conf "$dest/etc/ipcased/ipcased.conf"
tap_ok $? "installed config is conf/ipcased.conf"

cmp -s systemd/ipcased.service "$dest/lib/systemd/system/ipcased.service"
tap_ok $? "installed unit is systemd/ipcased.service"

# The sample configuration ends with @include "rules.conf", and the unit
# loads /etc/ipcased/rules.conf as a credential: without the file neither the
# config check nor the service can start.
if grep -q '^@include "rules.conf"' conf/ipcased.conf; then
	if [ -f conf/rules.conf ]; then
		{
			if [ ! -f "$dest/etc/ipcased/rules.conf" ]; then
				echo "missing: /etc/ipcased/rules.conf"
			elif ! cmp -s conf/rules.conf "$dest/etc/ipcased/rules.conf"; then
				echo "/etc/ipcased/rules.conf differs from conf/rules.conf"
			elif [ $((8#$(mode "$dest/etc/ipcased/rules.conf") & 8#022)) -ne 0 ]; then
				# Only root may change what the daemon takes for rules.
				echo "/etc/ipcased/rules.conf is writable by group or others"
			fi
		} >"$out" 2>&1
		[ ! -s "$out" ]
		tap_ok $? "conf/rules.conf installed as /etc/ipcased/rules.conf (the config includes it)" "$out"
	else
		echo "ok $((TAP_N += 1)) - /etc/ipcased/rules.conf # SKIP conf/rules.conf not in the tree"
	fi
fi

: >"$out"
for p in $PAGES; do
	check_file "/usr/share/man/$p" 644 >>"$out" 2>&1
done
[ ! -s "$out" ]
tap_ok $? "man pages installed: $PAGES" "$out"

# ---- a second install keeps the admin's configuration ----------------------

conf="$dest/etc/ipcased/ipcased.conf"
printf '\n# changed by the admin\n' >>"$conf"
cp "$conf" "$tmp/admin.conf"
chmod 600 "$conf"
do_make install
rc=$?
tap_ok $rc "make install again" "$log"
cmp -s "$tmp/admin.conf" "$conf" && [ "$(mode "$conf")" = 600 ]
tap_ok $? "second make install leaves the changed /etc/ipcased/ipcased.conf (content and mode) alone"

# ---- the man pages render without a warning --------------------------------

have_man=false
have_groff=false
command -v man >/dev/null 2>&1 && have_man=true
command -v groff >/dev/null 2>&1 && have_groff=true
$have_man || $have_groff
tap_ok $? "man (man-db) or groff is there to render the pages"
npages=0
for f in "$dest"/usr/share/man/man*/*; do
	[ -f "$f" ] || continue
	npages=$((npages + 1))
	name=${f#"$dest"/usr/share/man/}
	# man and groff report warnings on stderr and still exit 0.
	if $have_man; then
		MANWIDTH=80 man --warnings -l "$f" >"$tmp/page" 2>"$out"
		rc=$?
		[ "$rc" -eq 0 ] && [ ! -s "$out" ] && [ -s "$tmp/page" ]
		tap_ok $? "man --warnings -l $name: renders without warnings" "$out"
	fi
	if $have_groff; then
		groff -man -ww -z "$f" >"$out" 2>&1
		rc=$?
		[ "$rc" -eq 0 ] && [ ! -s "$out" ]
		tap_ok $? "groff -man -ww -z $name: no warnings" "$out"
	fi
	if command -v lexgrog >/dev/null 2>&1; then
		lexgrog "$f" >"$out" 2>&1
		tap_ok $? "lexgrog $name: NAME section readable for whatis/apropos" "$out"
	fi
done
[ "$npages" -ge 3 ]
tap_ok $? "at least 3 man pages installed ($npages)"

# ---- the unit --------------------------------------------------------------

if command -v systemd-analyze >/dev/null 2>&1; then
	# --threshold counts in tenths of the exposure shown: 15 is 1.5.
	systemd-analyze security --offline=yes --threshold=15 systemd/ipcased.service \
	    >"$out" 2>&1
	rc=$?
	# On failure show what costs exposure, not the whole table.
	grep -v '^✓' "$out" >"$tmp/security"
	tap_ok $rc "systemd-analyze security --offline=yes --threshold=15 exits 0" "$tmp/security"
	exposure=$(sed -n 's/.*Overall exposure level for [^:]*: *\([0-9][0-9.]*\).*/\1/p' "$out")
	if [ -n "$exposure" ] && awk -v e="$exposure" -v m="$MAX_EXPOSURE" \
	    'BEGIN { exit !(e + 0 <= m + 0) }'; then
		tap_ok 0 "exposure level ${exposure} is at most $MAX_EXPOSURE"
	else
		tap_ok 1 "exposure level '${exposure}' is at most $MAX_EXPOSURE" "$tmp/security"
	fi

	# `verify --root=` would look for every unit the service names
	# (sysinit.target ...) and /bin/kill inside the DESTDIR too.  Instead
	# the installed unit is verified with ExecStart= pointing at the
	# installed binary, and MANPATH pointing at the installed man pages,
	# which Documentation=man:... names: nothing needs filtering.
	vdir="$tmp/verify"
	mkdir -p "$vdir"
	sed "s|^ExecStart=/usr/sbin/ipcased|ExecStart=$dest/usr/sbin/ipcased|" \
	    "$dest/lib/systemd/system/ipcased.service" >"$vdir/ipcased.service"
	if grep -q "^ExecStart=$dest/usr/sbin/ipcased" "$vdir/ipcased.service"; then
		MANPATH="$dest/usr/share/man" systemd-analyze verify "$vdir/ipcased.service" \
		    >"$out" 2>&1
		rc=$?
		[ "$rc" -eq 0 ] && [ ! -s "$out" ]
		tap_ok $? "systemd-analyze verify: installed unit with the installed binary and man pages is clean" "$out"
	else
		tap_ok 1 "installed unit has ExecStart=/usr/sbin/ipcased"
	fi
else
	echo "ok $((TAP_N += 1)) - systemd-analyze security # SKIP no systemd-analyze"
	echo "ok $((TAP_N += 1)) - systemd-analyze verify # SKIP no systemd-analyze"
fi

# ---- uninstall -------------------------------------------------------------

do_make uninstall
tap_ok $? "make uninstall DESTDIR=... PREFIX=/usr" "$log"

: >"$out"
for f in /usr/sbin/ipcased /usr/bin/ipcase /lib/systemd/system/ipcased.service; do
	[ -e "$dest$f" ] && echo "still there: $f" >>"$out"
done
for p in $PAGES; do
	[ -e "$dest/usr/share/man/$p" ] && echo "still there: /usr/share/man/$p" >>"$out"
done
# Everything install wrote is gone, except what the admin owns under /etc.
find "$dest" ! -type d ! -path "$dest/etc/ipcased/*" | sed "s|^$dest|left behind: |" >>"$out"
[ ! -s "$out" ]
tap_ok $? "make uninstall removes the binaries, the unit and the man pages" "$out"

cmp -s "$tmp/admin.conf" "$conf"
tap_ok $? "make uninstall keeps /etc/ipcased/ipcased.conf"

tap_done
