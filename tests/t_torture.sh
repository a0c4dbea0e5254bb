#!/bin/bash
# t_torture.sh — the short fault-injection run of `make check`: 10 SIGKILLs while ipcased ingests 1,000 messages, then every other fault once (tests/torture.sh; `make torture` runs 100 kills).
#
# The clock phase leaves out its live-daemon part (a minute of waiting each
# way); everything else is the same as in `make torture`.  A sanitizer build
# (`make check SANITIZE=1`, which CI runs after the plain one) lands 4 kills:
# its processes start several times slower, and what it looks for, a memory
# error on the way down or back up, shows in the first rounds as well.
cd "$(dirname "$0")/.." || exit 1
kills=10
grep -q -- '-fsanitize' daemon/.build-flags 2>/dev/null && kills=4
KILLS=${KILLS:-$kills} CLOCK_LIVE=${CLOCK_LIVE:-0} exec bash tests/torture.sh
