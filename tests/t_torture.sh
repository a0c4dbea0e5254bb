#!/bin/bash
# t_torture.sh — the short fault-injection run of `make check`: 10 SIGKILLs while ipcased ingests 1,000 messages, then every other fault once (tests/torture.sh; `make torture` runs 100 kills).
#
# The clock phase leaves out its live-daemon part (a minute of waiting each
# way); everything else is the same as in `make torture`.
cd "$(dirname "$0")/.." || exit 1
KILLS=${KILLS:-10} CLOCK_LIVE=${CLOCK_LIVE:-0} exec bash tests/torture.sh
