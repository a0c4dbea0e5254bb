#!/bin/sh
# t_corpus.sh — runs `ipcase classify` over tests/samples and tests/corpus and
# compares every field with the manifests.  Prints "ok FILE" or "not ok FILE:
# field expected X got Y" per mail; exits 1 on any failure.
#
# Manifest kinds "correspondence" and "negative" must classify as "other".
# For correspondence only kind and complaint_id are the mail's own: the other
# columns describe the case the thread belongs to, which `classify` (no store)
# cannot know.  context.tsv next to a manifest lists other fields that come
# from the case rather than from the mail (e.g. the type of a reinstatement
# that does not name it): there null is accepted besides the manifest value.
#
# IPCASE overrides the binary (default daemon/ipcase), IPCASE_CONF the config.
cd "$(dirname "$0")/.." || exit 1
IPCASE=${IPCASE:-daemon/ipcase}
CONF=${IPCASE_CONF:-tests/samples.conf}
PY=/usr/bin/python3
[ -x "$PY" ] || PY=python3
if [ ! -x "$IPCASE" ]; then
	echo "not ok t_corpus: $IPCASE is not built"
	exit 1
fi
status=0
for dir in tests/samples tests/corpus; do
	[ -f "$dir/manifest.tsv" ] || continue
	out=$(mktemp) || exit 1
	# shellcheck disable=SC2046
	"$IPCASE" -c "$CONF" classify $(awk -F'\t' -v d="$dir" 'NR > 1 && $1 != "" { print d "/" $1 }' "$dir/manifest.tsv") >"$out"
	rc=$?
	if [ $rc -ne 0 ] && [ $rc -ne 1 ]; then
		echo "not ok $dir: ipcase classify exited $rc"
		status=1
	fi
	"$PY" - "$dir" "$out" <<'PYEOF' || status=1
import json, os, sys

d, out = sys.argv[1], sys.argv[2]
rows = [l.rstrip("\n").split("\t") for l in open(os.path.join(d, "manifest.tsv"), encoding="utf-8")]
head, rows = rows[0], [r for r in rows[1:] if r and r[0]]
context = set()
cpath = os.path.join(d, "context.tsv")
if os.path.exists(cpath):
    for l in open(cpath, encoding="utf-8"):
        if l.strip() and not l.startswith("#"):
            f = l.rstrip("\n").split("\t")
            context.add((f[0], f[1]))
got = {}
for l in open(out, encoding="utf-8"):
    o = json.loads(l)
    got[os.path.basename(o["file"])] = o

def norm(v):
    if v is None or v == "" or v == "-":
        return "-"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, list):
        return ",".join(v) if v else "-"
    return str(v)

fields = ["kind", "marketplace", "infringement_type", "complaint_id", "asins",
          "rights_owner_name", "rights_owner_email", "deadline_days"]
failed = 0
for r in rows:
    m = dict(zip(head, r))
    name = m["file"]
    o = got.get(name)
    if o is None or "error" in o:
        print("not ok %s: no verdict (%s)" % (name, o.get("error") if o else "missing"))
        failed += 1
        continue
    bad = []
    for f in fields:
        want = m.get(f, "-")
        if f == "kind":
            have = o["kind"]
            if want in ("correspondence", "negative"):
                want = "other"
        elif f == "complaint_id":
            have = norm(o.get("complaint_ids"))
        else:
            have = norm(o.get(f))
        if m["kind"] == "correspondence" and f not in ("kind", "complaint_id"):
            continue
        if want == have:
            continue
        if (name, f) in context and have == "-":
            continue
        bad.append("%s expected %s got %s" % (f, want, have))
    if bad:
        print("not ok %s: %s" % (name, "; ".join(bad)))
        failed += 1
    else:
        print("ok %s " % name)
sys.exit(1 if failed else 0)
PYEOF
	rm -f "$out"
done
exit $status
