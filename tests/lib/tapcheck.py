"""tapcheck.py — the assertions of the tests' Python checks: one "ok - what" or
"not ok - what" line each (tap.sh's tap_feed numbers them), the details of a
failure as "#   ..." lines under it, and the exit status at the end."""

failed = 0


def report(ok, what, details=()):
    """One assertion, returned; up to 20 details of a failure, each cut to 300 characters."""
    global failed
    print(("ok - " if ok else "not ok - ") + what)
    if not ok:
        failed += 1
        for d in list(details)[:20]:
            print("#   " + str(d)[:300])
    return ok


def status():
    """The exit status: 1 when any assertion failed."""
    return 1 if failed else 0
