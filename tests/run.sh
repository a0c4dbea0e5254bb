#!/bin/bash
# run.sh — `make check`: runs the cmocka binaries given as arguments, then tests/t_*.sh and tests/e2e_*.sh; ends with "N passed, N failed".
#
# A cmocka binary counts its "[  PASSED  ] N test(s)." and "[  FAILED  ] N test(s)"
# lines; one that crashes, is killed or exits non-zero without a failure in its
# summary (an ASan/UBSan abort, a leak report at exit) counts one failure more.
# A script counts its "ok ..." and "not ok ..." lines; one that exits non-zero
# without a "not ok" line counts one failure.  Passing tests are shown in one
# line (VERBOSE=1: in full too), failing ones in full.
if [ -z "${BASH_VERSION:-}" ]; then
	exec bash "$0" "$@"
fi
set -u

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT" || exit 1

# Seconds one binary or script may take before it counts as hung.
TEST_TIMEOUT=${TEST_TIMEOUT:-600}
# cmocka must print its plain summary, not XML or TAP.
unset CMOCKA_MESSAGE_OUTPUT CMOCKA_XML_FILE
# Sanitizer reports must end the program with a non-zero status, which is counted.
export ASAN_OPTIONS=${ASAN_OPTIONS:-abort_on_error=0:exitcode=23}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
# The daemon's helper programs (ipcased-fetch, ipcased-send) for tests that run the library from tests/.
export IPCASED_LIBEXEC=$ROOT/daemon

total_pass=0
total_fail=0
out=$(mktemp "${TMPDIR:-/tmp}/ipcased-run.XXXXXX") || exit 1
trap 'rm -f "$out"' EXIT

show_full() {
	sed 's/^/    /' "$out"
}

run_binary() {
	local bin="$1" rc p f
	case "$bin" in
	*/*) ;;
	*) bin="./$bin" ;;
	esac
	SECONDS=0
	timeout -k 10 "$TEST_TIMEOUT" "$bin" >"$out" 2>&1 </dev/null
	rc=$?
	p=$(sed -n 's/^\[  PASSED  \] \([0-9][0-9]*\) test(s)\..*/\1/p' "$out" | awk '{s+=$1} END {print s+0}')
	f=$(sed -n 's/^\[  FAILED  \] \([0-9][0-9]*\) test(s).*/\1/p' "$out" | awk '{s+=$1} END {print s+0}')
	if ! grep -q '^\[==========\] .* test(s) run\.' "$out"; then
		# No summary: it crashed before the end, or is not a cmocka program.
		f=$((f + 1))
	elif [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
		f=1
	fi
	total_pass=$((total_pass + p))
	total_fail=$((total_fail + f))
	if [ "$f" -eq 0 ]; then
		printf 'PASS  %s (%d tests, %d s)\n' "$bin" "$p" "$SECONDS"
		[ "${VERBOSE:-0}" = 1 ] && show_full
	else
		printf 'FAIL  %s (%d passed, %d failed, exit %d, %d s)\n' "$bin" "$p" "$f" "$rc" "$SECONDS"
		[ "$rc" -eq 124 ] && printf '    (killed after %ss)\n' "$TEST_TIMEOUT"
		show_full
	fi
}

run_script() {
	local sc="$1" rc p f
	SECONDS=0
	timeout -k 10 "$TEST_TIMEOUT" bash "$sc" >"$out" 2>&1 </dev/null
	rc=$?
	p=$(grep -c '^ok\b' "$out")
	f=$(grep -c '^not ok\b' "$out")
	if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
		f=1
	elif [ "$rc" -eq 0 ] && [ "$p" -eq 0 ] && [ "$f" -eq 0 ]; then
		p=1
	fi
	total_pass=$((total_pass + p))
	total_fail=$((total_fail + f))
	if [ "$f" -eq 0 ]; then
		printf 'PASS  %s (%d tests, %d s)\n' "$sc" "$p" "$SECONDS"
		[ "${VERBOSE:-0}" = 1 ] && show_full
	else
		printf 'FAIL  %s (%d passed, %d failed, exit %d, %d s)\n' "$sc" "$p" "$f" "$rc" "$SECONDS"
		[ "$rc" -eq 124 ] && printf '    (killed after %ss)\n' "$TEST_TIMEOUT"
		show_full
	fi
}

for bin in "$@"; do
	run_binary "$bin"
done

for sc in tests/t_*.sh tests/e2e_*.sh; do
	[ -f "$sc" ] || continue
	run_script "$sc"
done

printf '%d passed, %d failed\n' "$total_pass" "$total_fail"
[ "$total_fail" -eq 0 ]
