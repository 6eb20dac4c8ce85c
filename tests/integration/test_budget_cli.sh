#!/usr/bin/env bash
# `kascade budget` against the real Redis: show --json on an empty Redis,
# runtime limits set and cleared for a tier and a tenant, tenants found by
# their budget hash (not their helper keys), reset refused without a
# terminal and done with --yes (the spend kept in reset_micro), usage
# errors and an unreachable Redis.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

redis_port=${KASCADE_REDIS_URL##*:}
rcli() { redis-cli -p "$redis_port" "$@"; }
IT_HOOKS+=("redis-cli -p $redis_port --scan --pattern '${IT_PREFIX}*' |
    xargs -r redis-cli -p $redis_port DEL")

show() { it_kascade budget show --json >"$IT_DIR/show.json" 2>>"$IT_DIR/cli.log"; }
field() { # field KIND NAME KEY: one value of the last show, "absent" if no row
    python3 - "$IT_DIR/show.json" "$@" <<'PY'
import json, sys
doc = json.load(open(sys.argv[1]))
rows = [b for b in doc["budgets"] if (b["kind"], b["name"]) == tuple(sys.argv[2:4])]
print(json.dumps(rows[0][sys.argv[4]]) if len(rows) == 1 else
      "absent" if not rows else "duplicate")
PY
}
is() { # is KIND NAME KEY EXPECTED
    local got
    got=$(field "$1" "$2" "$3")
    [ "$got" = "$4" ] || { it_log "$1 $2 $3: got $got, expected $4"; return 1; }
}
status_of() { # status_of EXPECTED COMMAND...: the command exits with EXPECTED
    local rc=0
    "${@:2}" >>"$IT_DIR/cli.log" 2>&1 || rc=$?
    [ "$rc" = "$1" ] || { it_log "exit status $rc, expected $1: ${*:2}"; return 1; }
}

it_check "show --json on an empty Redis" show
DAY=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["day"])' "$IT_DIR/show.json")
it_check "the day is today (UTC)" test "$DAY" = "$(date -u +%Y%m%d)"
it_check "local is unlimited" is tier local limit_usd null
it_check "mid has the config's 20 USD" is tier mid limit_usd 20
it_check "mid's limit comes from the config" is tier mid limit_source '"config"'
it_check "mid has 20 USD remaining" is tier mid remaining_usd 20
it_check "no tenant rows yet" \
    test "$(python3 -c 'import json,sys; print(sum(b["kind"] == "tenant" for b in json.load(open(sys.argv[1]))["budgets"]))' "$IT_DIR/show.json")" = 0

it_check "set mid 12.5" status_of 0 it_kascade budget set mid 12.5
show
it_check "mid's limit is 12.5 USD" is tier mid limit_usd 12.5
it_check "mid's limit is the runtime one" is tier mid limit_source '"runtime"'
it_check "stored in micro-dollars under limit:tier:mid" \
    test "$(rcli GET "${IT_PREFIX}{budget}:limit:tier:mid")" = 12500000
it_check "set of an unknown tier is a usage error" \
    status_of 2 it_kascade budget set nosuch 1
for bad in -1 abc nan inf 0x10 1e12 ""; do
    it_check "set mid '$bad' is refused" status_of 2 it_kascade budget set mid "$bad"
done
it_check "a refused set leaves the limit alone" \
    test "$(rcli GET "${IT_PREFIX}{budget}:limit:tier:mid")" = 12500000
it_check "set mid none" status_of 0 it_kascade budget set mid none
show
it_check "mid is back to the config's 20 USD" is tier mid limit_usd 20
it_check "mid's limit comes from the config again" is tier mid limit_source '"config"'

it_check "set-tenant acme 3" status_of 0 it_kascade budget set-tenant acme 3
show
it_check "acme is listed with its runtime limit" is tenant acme limit_usd 3
it_check "acme's limit is the runtime one" is tenant acme limit_source '"runtime"'
it_check "set-tenant with a bad name is refused" \
    status_of 2 it_kascade budget set-tenant 'a:b' 3
it_check "set-tenant acme none" status_of 0 it_kascade budget set-tenant acme none
show
it_check "acme is gone with its limit" is tenant acme limit_usd absent

# Spend as the workers record it (docs/design.md section 7).
rcli HSET "${IT_PREFIX}{budget}:$DAY:tier:mid" spent 1500000 reserved 0 >/dev/null
rcli HSET "${IT_PREFIX}{budget}:$DAY:tenant:globex" spent 250000 reserved 0 >/dev/null
rcli HSET "${IT_PREFIX}{budget}:$DAY:tenant:globex:amt" r1 0 >/dev/null
it_check "show --json with spend" show
it_check "mid has spent 1.5 USD" is tier mid spent_usd 1.5
it_check "mid has 18.5 USD remaining" is tier mid remaining_usd 18.5
it_check "globex is found by its budget hash, once" is tenant globex spent_usd 0.25
it_check "globex is unlimited" is tenant globex remaining_usd null
it_check "no row for a helper key" is tenant globex:amt spent_usd absent
it_kascade budget show >"$IT_DIR/show.txt" 2>>"$IT_DIR/cli.log"
it_check "the table starts with the day" \
    grep -Eq "^day $DAY \(UTC\), [0-9]+% elapsed$" "$IT_DIR/show.txt"
it_check "the table shows mid's spend" grep -Eq \
    '^tier +mid +20\.000000 +1\.500000 +0\.000000 +18\.500000 +[0-9]+%$' \
    "$IT_DIR/show.txt"

it_check "reset without a terminal is refused" \
    status_of 2 it_kascade budget reset mid </dev/null
show
it_check "the refused reset kept mid's spend" is tier mid spent_usd 1.5
it_check "reset mid --yes" status_of 0 it_kascade budget reset mid --yes </dev/null
show
it_check "mid has spent 0 after the reset" is tier mid spent_usd 0
it_check "the spend is kept in reset_micro" \
    test "$(rcli HGET "${IT_PREFIX}{budget}:$DAY:tier:mid" reset_micro)" = 1500000
it_check "reset of an unknown tier is a usage error" \
    status_of 2 it_kascade budget reset nosuch --yes

dead_port=$(it_free_port)
it_check "an unreachable Redis exits 1" \
    status_of 1 it_kascade -X "redis.url=redis://127.0.0.1:$dead_port" budget show
it_check "and says which Redis" \
    grep -q "cannot reach Redis at redis://127.0.0.1:$dead_port" "$IT_DIR/cli.log"
