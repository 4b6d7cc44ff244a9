#!/usr/bin/env bash
# The scale measurements of issue 11 that the sweep does not make, on a real
# three-node cluster of OS processes on loopback (fsync on, default timings,
# a snapshot every 256 entries, so a new node is caught up by InstallSnapshot):
#
#   - the bulk import's rate (optoutctl import, CSV of N fresh records);
#   - peak RSS and data dir of each node at N records;
#   - the time of each node's Raft snapshot (from its log);
#   - the time of a backup (optoutctl snapshot save);
#   - the time a fresh fourth node takes to catch up (--join, by snapshot).
#
# Usage: bench/scale/run.sh [N]   (default 1000000; TMPDIR holds the data)
# The check throughput at N against 20k keys comes from the sweep tool:
#   cd bench && go run . --workloads check --keys N ...
# Everything it starts is stopped on exit; the data dir is removed unless
# KEEP=1.
set -euo pipefail
N=${1:-1000000}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
DIR=$(mktemp -d -p "${TMPDIR:-/tmp}" optoutd-scale.XXXXXX)
PIDS=()
cleanup() {
	for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	if [ "${KEEP:-0}" != 1 ]; then rm -rf "$DIR"; else echo "kept $DIR"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM
say() { printf '[scale %s] %s\n' "$(date +%T)" "$*" >&2; }
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.2f", b - a }'; }

say "building into $DIR/bin"
(cd "$ROOT" && CGO_ENABLED=0 go build -o "$DIR/bin/optoutd" ./cmd/optoutd && go build -o "$DIR/bin/optoutctl" ./cmd/optoutctl)
CTL=("$DIR/bin/optoutctl" --endpoints 127.0.0.1:17201,127.0.0.1:17202,127.0.0.1:17203 --timeout 60s)
INIT=n1=127.0.0.1:17301,n2=127.0.0.1:17302,n3=127.0.0.1:17303
start() { # id n [extra flags]
	local id=$1 n=$2
	shift 2
	mkdir -p "$DIR/$id"
	"$DIR/bin/optoutd" server --id "$id" --data-dir "$DIR/$id" --api-addr "127.0.0.1:1720$n" --raft-addr "127.0.0.1:1730$n" \
		--snapshot-threshold 256 --trailing-logs 64 --snapshot-interval 5s --log-format json "$@" >"$DIR/$id.log" 2>&1 &
	PIDS+=($!)
	echo $! >"$DIR/$id.pid"
}
for n in 1 2 3; do start "n$n" "$n" --initial-cluster "$INIT"; done
for _ in $(seq 100); do "${CTL[@]}" status >/dev/null 2>&1 && break; sleep 0.2; done
"${CTL[@]}" status >/dev/null

say "writing $N records to $DIR/import.csv"
awk -v n="$N" 'BEGIN { print "subject_id,purpose,state,source"; for (i = 0; i < n; i++) printf "scale-%09d,analytics,opted_out,scale\n", i }' >"$DIR/import.csv"
say "importing (batches of 1000, 4 in flight)"
t=$(now)
"${CTL[@]}" -o json import "$DIR/import.csv" --batch-size 1000 --concurrency 4 --progress never >"$DIR/import.json"
IMPORT_S=$(since "$t")
say "imported in ${IMPORT_S}s: $(cat "$DIR/import.json")"

# Snapshots: let each node take one at the end of the import, then read
# the durations from the logs.
sleep 12
rss() { awk '/VmHWM/ { printf "%.0f", $2 / 1024 }' "/proc/$(cat "$DIR/$1.pid")/status"; }
size() { du -sm "$DIR/$1" | cut -f1; }
snaptimes() { # the longest "starting snapshot up to" -> "snapshot complete up to" in a log
	python3 - "$1" <<'PY'
import json, sys, datetime
start, worst = None, 0.0
for line in open(sys.argv[1]):
    try:
        e = json.loads(line)
    except ValueError:
        continue
    t = datetime.datetime.fromisoformat(e.get("time", "").replace("Z", "+00:00")) if e.get("time") else None
    if e.get("msg") == "starting snapshot up to":
        start = t
    elif e.get("msg") == "snapshot complete up to" and start and t:
        worst = max(worst, (t - start).total_seconds())
print(f"{worst:.2f}")
PY
}
for id in n1 n2 n3; do
	say "$id: peak RSS $(rss $id) MiB, data dir $(size $id) MiB, longest Raft snapshot $(snaptimes "$DIR/$id.log")s"
done

say "backup (optoutctl snapshot save)"
t=$(now)
"${CTL[@]}" snapshot save "$DIR/backup.snap" >/dev/null
say "backup of $(du -m "$DIR/backup.snap" | cut -f1) MiB in $(since "$t")s"

LEADER_COMMIT=$("${CTL[@]}" -o json status | python3 -c 'import json,sys; print(json.load(sys.stdin)["commitIndex"])')
say "starting n4 with --join (leader's commit index $LEADER_COMMIT)"
t=$(now)
start n4 4 --join 127.0.0.1:17201,127.0.0.1:17202,127.0.0.1:17203
for _ in $(seq 6000); do
	applied=$("$DIR/bin/optoutctl" --endpoints 127.0.0.1:17204 -o json status 2>/dev/null | python3 -c 'import json,sys; print(json.load(sys.stdin).get("appliedIndex", 0))' 2>/dev/null || echo 0)
	[ "${applied:-0}" -ge "$LEADER_COMMIT" ] && break
	sleep 0.1
done
CATCHUP_S=$(since "$t")
how=$(grep -c "Installed remote snapshot" "$DIR/n4.log" || true)
say "n4 applied index $applied >= $LEADER_COMMIT after ${CATCHUP_S}s (snapshot log lines: $how); peak RSS $(rss n4) MiB"
