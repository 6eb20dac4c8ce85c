#!/usr/bin/env bash
# Incremental rebalancing: a tier of 6 partitions under a steady stream of
# tasks against a slow model (200-500 ms a call) is scaled from 1 worker
# to 3 and back to 1 during the run. Checked from the workers' logs (each
# logs "assign T[p] at MONO", "revoke T[p] at MONO" and, at debug, every
# call start with its T[p] and the same monotonic clock):
# - no worker starts a call for a partition after its revocation began
#   (and before the partition is assigned to it again);
# - while a worker gives partitions up, the partitions it keeps go on
#   starting calls (cooperative-sticky: only what moves stops);
# - every task is answered, and the calls beyond one per task (paid
#   twice) stay few: the number is reported.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

IT_X+=(-X "topics.partitions=6"
       -X "kafka.session.timeout.ms=6000" -X "kafka.heartbeat.interval.ms=500"
       -X "tiers.mid.max_inflight=8")
it_kascade topics create >"$IT_DIR/topics.out"
B=$KASCADE_BOOTSTRAP_SERVERS
it_sim mid --latency-ms 200 --jitter-ms 300
SIM=$SIM_URL
IT_X+=(-X "tiers.mid.providers.0.base_url=$SIM/v1")

# A steady stream, a little faster than one worker at max_inflight 8
# answers (8 / 0.35 s = 23 a second), so that jobs wait for a call slot
# when partitions are revoked.
RATE=30 SECS=50
N=$((RATE * SECS))
feed() { # RATE tasks a second, evenly spread, each its own key
    python3 -u -c 'import json, sys, time
r, n = int(sys.argv[1]), int(sys.argv[2])
t0 = time.monotonic()
for i in range(n):
    time.sleep(max(0.0, t0 + i / r - time.monotonic()))
    print("rb-%d\t%s" % (i, json.dumps({"id": "rb-%d" % i, "type": "answer",
          "input": "rebalance question %d" % i})), flush=True)' "$RATE" "$N" |
        kcat -b "$B" -P -t "${IT_PREFIX}tier.mid" -K $'\t' -X linger.ms=5
}
distinct() {
    it_read results | python3 -c 'import json, sys
print(len({json.loads(l)["value"]["id"] for l in sys.stdin}))'
}
wait_distinct() { # wait_distinct N SECONDS
    local deadline=$((SECONDS + $2)) n=0
    while [ $SECONDS -lt $deadline ]; do
        n=$(distinct)
        [ "$n" -ge "$1" ] && return 0
        sleep 2
    done
    it_log "$n distinct results, expected $1"
    return 1
}

wait_calls() { # wait_calls N SECONDS: until the simulator saw N calls
    local deadline=$((SECONDS + $2))
    while [ $SECONDS -lt $deadline ]; do
        [ "$(it_sim_requests "$SIM")" -ge "$1" ] && return 0
        sleep 0.2
    done
    it_log "the simulator saw $(it_sim_requests "$SIM") calls, expected $1"
    return 1
}
joined() { # joined LOGNAME...: each worker has partitions and made a call
    local name
    for name in "$@"; do
        grep -q "worker: assign " "$IT_DIR/$name.log" &&
            grep -q ": call mid" "$IT_DIR/$name.log" || return 1
    done
}
wait_joined() {
    local deadline=$((SECONDS + 60))
    while [ $SECONDS -lt $deadline ]; do
        joined "$@" && return 0
        sleep 0.2
    done
    return 1
}

it_daemon worker-a kascade-worker --tier mid -X log.level=debug
A=$LAST_PID
feed &
FEED=$!
IT_PIDS+=($FEED)
# Scaled up once worker a has worked for a while (a backlog waits), and
# down once b and c work too: the run's timing must not depend on how
# fast the daemons start on a loaded machine.
it_check "worker a answers" wait_calls 150 60
it_log "scaling to 3 workers"
it_daemon worker-b kascade-worker --tier mid -X log.level=debug
W2=$LAST_PID
it_daemon worker-c kascade-worker --tier mid -X log.level=debug
W3=$LAST_PID
it_check "workers b and c take partitions and call" \
    wait_joined worker-b worker-c
sleep 3
it_log "scaling back to 1 worker"
it_check "worker b drains and exits 0" it_stop "$W2"
it_check "worker c drains and exits 0" it_stop "$W3"
wait "$FEED"
it_check "every task answered" wait_distinct "$N" 180

check_logs() {
    python3 - "$IT_DIR" <<'PY'
import glob, re, sys
ev = re.compile(r"worker: (assign|revoke) (\S+)\[(\d+)\] at (\d+)")
call = re.compile(r"worker: (\S+): call \S+ \(hop \d+\) (\S+)\[(\d+)\] at (\d+)")
done = re.compile(r"worker: revoked \d+ partition\(s\) at (\d+)"
                  r"(?:: (\d+) job\(s\) not started dropped)?")
late = kept = revokes = dropped = 0
for log in sorted(glob.glob(sys.argv[1] + "/worker-*.log")):
    owned, windows, starts = {}, [], []
    begin = None
    for line in open(log):
        m = ev.search(line)
        if m:
            what, part, t = m.group(1), (m.group(2), m.group(3)), int(m.group(4))
            owned[part] = what == "assign"
            if what == "revoke":
                revokes += 1
                if begin is None:
                    begin, revoking = t, set()
                revoking.add(part)
            continue
        m = done.search(line)
        if m and m.group(2):
            dropped += int(m.group(2))
        if m and begin is not None:
            windows.append((begin, int(m.group(1)), revoking))
            begin = None
            continue
        m = call.search(line)
        if m:
            part, t = (m.group(2), m.group(3)), int(m.group(4))
            if not owned.get(part, False):
                late += 1
                print("%s: %s started a call on %s[%s] at %d after its "
                      "revocation began" % (log.rsplit("/", 1)[1], m.group(1),
                                            part[0], part[1], t))
            starts.append((t, part))
    for b, e, parts in windows:
        kept += sum(1 for t, p in starts if b <= t <= e and p not in parts)
print("%d partition revocation(s); %d call(s) started on a partition after "
      "its revocation began; %d call(s) started on kept partitions during "
      "revocations; %d job(s) not started dropped at revocation"
      % (revokes, late, kept, dropped))
sys.exit(0 if revokes > 0 and late == 0 and kept > 0 else 1)
PY
}
it_check "no call starts on a partition after its revocation began" check_logs
made=$(it_sim_requests "$SIM")
it_log "$made calls for $N tasks: $((made - N)) beyond one per task"
it_check "calls beyond one per task stay few ($((made - N)))" \
    test "$made" -ge "$N" -a "$made" -le $((N + 8))
it_check "worker a drains and exits 0" it_stop "$A"
