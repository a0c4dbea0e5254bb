# tap.sh — "ok N - what" / "not ok N - what" lines for the test scripts; source it.
# shellcheck shell=bash
#
#   tap_ok RC WHAT [DETAIL-FILE]   ok when RC is 0; on failure the file is shown as "# " lines
#   tap_run WHAT CMD...            runs CMD, ok when it exits 0; its output is shown on failure
#   tap_feed < LINES               renumbers "ok - x" / "not ok - x" lines (check_cases.py)
#   tap_feed_cmd WHAT CMD...       tap_feed of CMD's output; a CMD that fails without a
#                                  "not ok" line (a crash) adds "not ok - WHAT"
#   tap_bail WHAT                  a "not ok" line, then exit: nothing after it can be checked
#   tap_done                       "1..N" and the exit status: 1 if anything failed
# Use them in the main shell (not in a pipeline) so that the counters survive.

TAP_N=0
TAP_FAILED=0

_tap_detail() {
	[ -n "${1:-}" ] && [ -s "$1" ] && head -n 60 "$1" | sed 's/^/#   /'
	return 0
}

tap_ok() {
	local rc="$1" what="$2" detail="${3:-}"
	TAP_N=$((TAP_N + 1))
	if [ "$rc" -eq 0 ]; then
		echo "ok $TAP_N - $what"
	else
		TAP_FAILED=$((TAP_FAILED + 1))
		echo "not ok $TAP_N - $what"
		_tap_detail "$detail"
	fi
	return "$rc"
}

tap_run() {
	local what="$1" out rc
	shift
	out=$(mktemp "${TMPDIR:-/tmp}/ipcased-tap.XXXXXX")
	"$@" >"$out" 2>&1 </dev/null
	rc=$?
	tap_ok "$rc" "$what" "$out"
	rm -f "$out"
	return "$rc"
}

tap_feed() {
	local line
	while IFS= read -r line; do
		case "$line" in
		"ok - "*)
			TAP_N=$((TAP_N + 1))
			echo "ok $TAP_N - ${line#ok - }"
			;;
		"not ok - "*)
			TAP_N=$((TAP_N + 1))
			TAP_FAILED=$((TAP_FAILED + 1))
			echo "not ok $TAP_N - ${line#not ok - }"
			;;
		*)
			echo "$line"
			;;
		esac
	done
}

tap_feed_cmd() {
	local what="$1" out rc before
	shift
	out=$(mktemp "${TMPDIR:-/tmp}/ipcased-tap.XXXXXX")
	"$@" >"$out" 2>&1 </dev/null
	rc=$?
	before=$TAP_FAILED
	tap_feed <"$out"
	if [ "$rc" -ne 0 ] && [ "$TAP_FAILED" -eq "$before" ]; then
		tap_ok "$rc" "$what (exit $rc)"
	fi
	rm -f "$out"
	return "$rc"
}

tap_bail() {
	tap_ok 1 "$1" "${2:-}"
	echo "# stopping here: the remaining checks depend on this one"
	tap_done
}

tap_done() {
	echo "1..$TAP_N"
	[ "$TAP_FAILED" -eq 0 ] && exit 0
	echo "# $TAP_FAILED of $TAP_N failed"
	exit 1
}
