#!/bin/sh
# run.sh — builds every tests/fuzz/fuzz_*.c with clang's libFuzzer, ASan and UBSan,
# runs each for $1 seconds (default 60) on its seed corpus, and prints one line per
# target: executions, corpus size, outcome.  Crashes are kept in tests/fuzz/crashes/
# and make the run fail; once fixed, add the input to the seeds as a regression test.
set -u
cd "$(dirname "$0")/../.." || exit 1
seconds=${1:-60}
cc=${FUZZ_CC:-clang-14}
out=${FUZZ_OUT:-/tmp/ipcased-fuzz.$$}
mkdir -p "$out" tests/fuzz/crashes
cflags=$(make -s print-cflags | sed 's/-O2//')
ldlibs=$(make -s print-ldlibs | sed 's/-lcmocka//')
srcs=$(ls daemon/*.c | grep -v 'daemon/ipcase')	# every module, no program's main()
failed=0
passed=0

seed() {	# seed corpus of a target, from the tests' own fixtures
	case "$1" in
	fuzz_message|fuzz_rules|fuzz_header_diff) ls tests/samples/*.eml tests/corpus/*.eml tests/mime/*.eml 2>/dev/null ;;
	fuzz_conf) ls tests/conf/*.conf conf/ipcased.conf tests/fuzz/seeds/fuzz_conf/* 2>/dev/null ;;
	*) ls "tests/fuzz/seeds/$1"/* 2>/dev/null ;;
	esac
}

for src in tests/fuzz/fuzz_*.c; do
	t=$(basename "$src" .c)
	bin="$out/$t"
	if ! $cc -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
	    $cflags -Wno-unused-command-line-argument -o "$bin" "$src" $srcs $ldlibs \
	    >"$out/$t.build.log" 2>&1; then
		echo "not ok $t: does not build"; sed 's/^/    /' "$out/$t.build.log" | head -20
		failed=$((failed + 1))
		continue
	fi
	corpus="$out/$t.corpus"
	mkdir -p "$corpus"
	for f in $(seed "$t"); do cp "$f" "$corpus/" 2>/dev/null; done
	LSAN_OPTIONS=suppressions=tests/fuzz/lsan.supp:print_suppressions=0 \
	ASAN_OPTIONS=detect_leaks=1:allocator_may_return_null=1 "$bin" -max_total_time="$seconds" \
	    -max_len=262144 -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 -close_fd_mask=2 \
	    -artifact_prefix="tests/fuzz/crashes/$t-" "$corpus" >"$out/$t.log" 2>&1
	rc=$?
	execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$out/$t.log" | tail -1)
	units=$(ls "$corpus" | wc -l)
	if [ "$rc" -eq 0 ]; then
		echo "ok $t: ${execs:-?} executions in ${seconds}s, corpus $units, no crash"
		passed=$((passed + 1))
	else
		echo "not ok $t: exit $rc after ${execs:-?} executions (see tests/fuzz/crashes/)"
		grep -m 5 -e 'ERROR:' -e 'SUMMARY:' "$out/$t.log" | sed 's/^/    /'
		failed=$((failed + 1))
	fi
done
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
