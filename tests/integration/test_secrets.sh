#!/usr/bin/env bash
# Secrets and transport. The router and the workers run against a real
# broker's SASL_PLAINTEXT listener (mechanism PLAIN, credentials from
# KASCADE_KAFKA_SASL_USERNAME / _PASSWORD) and against Redis as an ACL user
# with a password (redis://user:password@...); wrong credentials are
# refused with a clear log line. Three fake secrets are planted (a
# provider API key, the SASL password, the Redis password) and searched
# for in every daemon log (at debug level), /metrics and /healthz, every
# DLQ record (value and headers) and every Result, while tasks succeed,
# fail at the top tier (failed Result + DLQ) and are dead-lettered.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

API_KEY="sk-planted-apikey-$RANDOM$RANDOM"
SASL_PW="planted-sasl-$RANDOM$RANDOM"
REDIS_PW="planted-redis-$RANDOM$RANDOM"
REDIS_USER="it-secrets-$$"

# A broker of this test's own, with a SASL listener beside the plaintext
# one; kcat (the test's reader) and the set-up use the plaintext port.
KSTATE="$IT_DIR/kafka"
SPORT=$(it_free_port)
B=$(KASCADE_STATE_DIR="$KSTATE" KASCADE_KAFKA_PORT=$(it_free_port) \
    KASCADE_KAFKA_SASL_PORT=$SPORT KASCADE_KAFKA_SASL_USERS="kascade:$SASL_PW" \
    "$KS_ROOT/deploy/local/kafka.sh" start 2>"$IT_DIR/kafka-start.out") ||
    it_die "the SASL broker did not start: $(tail -n 5 "$IT_DIR/kafka-start.out")"
IT_HOOKS+=("KASCADE_STATE_DIR='$KSTATE' '$KS_ROOT/deploy/local/kafka.sh' stop")
export KASCADE_BOOTSTRAP_SERVERS=$B
it_kascade topics create >"$IT_DIR/topics.out"

# A Redis ACL user limited to this test's keys.
REDIS_HOSTPORT=${KASCADE_REDIS_URL#redis://}
REDIS_HOSTPORT=${REDIS_HOSTPORT%%/*}
rcli() { redis-cli -h "${REDIS_HOSTPORT%:*}" -p "${REDIS_HOSTPORT#*:}" "$@"; }
rcli ACL SETUSER "$REDIS_USER" on ">$REDIS_PW" "~${IT_PREFIX}*" \
    +@read +@write +@scripting +@connection +time +select >/dev/null
IT_HOOKS+=("redis-cli -h '${REDIS_HOSTPORT%:*}' -p '${REDIS_HOSTPORT#*:}' ACL DELUSER '$REDIS_USER'")

it_sim local --model sim-local --fail 500:0.3
IT_X+=(-X "tiers.local.providers.0.base_url=$SIM_URL/v1")
it_sim frontier --model sim-frontier --fail 500:1
IT_X+=(-X "tiers.frontier.providers.0.base_url=$SIM_URL/v1"
       -X "tiers.frontier.providers.0.max_retries=1"
       -X "tiers.local.providers.0.max_retries=8")
for tier in local frontier; do
    IT_X+=(-X "tiers.$tier.providers.0.api_key_env=IT_PLANTED_API_KEY")
done
export IT_PLANTED_API_KEY=$API_KEY

# The daemons: SASL on the SASL port, secrets only in the environment.
SASL_X=(-X "kafka.bootstrap.servers=127.0.0.1:$SPORT"
        -X "kafka.security.protocol=SASL_PLAINTEXT"
        -X "kafka.sasl.mechanisms=PLAIN" -X "log.level=debug")
export KASCADE_KAFKA_SASL_USERNAME=kascade KASCADE_KAFKA_SASL_PASSWORD=$SASL_PW
SHARED_REDIS_URL=$KASCADE_REDIS_URL
export KASCADE_REDIS_URL="redis://$REDIS_USER:$REDIS_PW@$REDIS_HOSTPORT"
PORTS=()
for d in router worker-local worker-frontier; do
    port=$(it_free_port)
    PORTS+=("$port")
    case $d in
    router) it_daemon router kascade-router "${SASL_X[@]}" -X "metrics.port=$port" ;;
    *) it_daemon "$d" kascade-worker --tier "${d#worker-}" "${SASL_X[@]}" \
        -X "metrics.port=$port" ;;
    esac
    eval "PID_${d//-/_}=$LAST_PID"
done

{
    for i in $(seq 1 20); do
        printf 's%d\t{"id": "s%d", "type": "classify_intent", "input": "where is parcel %d"}\n' "$i" "$i" "$i"
    done
    for i in 1 2; do
        printf 'f%d\t{"id": "f%d", "type": "review", "input": "review contract %d"}\n' "$i" "$i" "$i"
    done
    printf 'bad1\t{"id": "bad1", "type": \n'
} | kcat -b "$B" -P -t "${IT_PREFIX}tasks" -K $'\t'

it_check "every task ends in a Result (20 ok, 2 failed at the top tier)" \
    it_wait_count results 22 120
it_check "the failed ones and the bad record are in the DLQ" it_wait_count dlq 3 60
it_check "tasks were answered through SASL and the ACL user" \
    test "$(it_read results | grep -c '"status": "ok"')" -ge 20

# Wrong credentials are refused, and said so, without the secret.
KASCADE_KAFKA_SASL_PASSWORD=wrong-password it_daemon router-badpw kascade-router \
    "${SASL_X[@]}" -X "metrics.port=$(it_free_port)"
BAD_ROUTER=$LAST_PID
KASCADE_REDIS_URL="redis://$REDIS_USER:wrong-password@$REDIS_HOSTPORT" \
    it_daemon worker-badpw kascade-worker --tier local "${SASL_X[@]}" \
    -X "metrics.port=$(it_free_port)"
BAD_WORKER=$LAST_PID
sleep 8
it_check "a wrong SASL password is refused by the broker, and logged" \
    grep -q -i 'authentication' "$IT_DIR/router-badpw.log"
it_check "a wrong Redis password is refused, and logged" \
    grep -q 'AUTH refused' "$IT_DIR/worker-badpw.log"
kill -TERM "$BAD_ROUTER" "$BAD_WORKER" 2>/dev/null || true
wait "$BAD_ROUTER" "$BAD_WORKER" 2>/dev/null || true

# Everything the fleet shows, in one place to search.
SEEN="$IT_DIR/seen.txt"
for port in "${PORTS[@]}"; do
    curl -sf "http://127.0.0.1:$port/metrics" >>"$SEEN" || true
    curl -sf "http://127.0.0.1:$port/healthz" >>"$SEEN" || true
done
it_read dlq >>"$SEEN"
it_read results >>"$SEEN"
export KASCADE_REDIS_URL=$SHARED_REDIS_URL
it_stop "$PID_router" && it_stop "$PID_worker_local" &&
    it_stop "$PID_worker_frontier" || it_log "a daemon did not exit 0"
it_check "what was searched has metrics, healthz, DLQ records and Results" \
    grep -q 'kascade_' "$SEEN"
it_check "the logs are at debug level" grep -q -i 'debug' "$IT_DIR/worker-local.log"
for secret in "$API_KEY" "$SASL_PW" "$REDIS_PW"; do
    it_check "no secret ${secret%%-[0-9]*} in logs, metrics, healthz, DLQ or Results" \
        bash -c '! grep -r -l -F -- "$1" "$2"/*.log "$3"' _ "$secret" "$IT_DIR" "$SEEN"
done
