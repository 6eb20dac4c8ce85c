#!/usr/bin/env bash
# tests/deploy/test_observability.sh BUILD_DIR - deploy/observability/:
# the alert rules pass `promtool check rules` and fire, and only fire, on
# the series of tests/deploy/alerts_test.yml (`promtool test rules`); every
# PromQL expression of the Grafana dashboard parses (checked as recording
# rules); every kascade_* metric either file uses is one the code
# registers (a histogram's _bucket, _sum and _count included).
set -uo pipefail
source "$(dirname "$0")/lib.sh"
OBS=$ROOT/deploy/observability
if ! command -v promtool >/dev/null; then
    echo "FAIL: promtool not found (deploy/local/deps.sh installs prometheus)"
    exit 1
fi
check "alerts.yml passes promtool check rules" \
    promtool check rules "$OBS/alerts.yml"

# The unit test runs on a copy without annotations (text for people).
python3 - "$OBS/alerts.yml" "$TMP/alerts.yml" <<'PY' &&
import sys, yaml
rules = yaml.safe_load(open(sys.argv[1]))
for group in rules["groups"]:
    for rule in group["rules"]:
        rule.pop("annotations", None)
yaml.safe_dump(rules, open(sys.argv[2], "w"))
PY
    cp "$ROOT/tests/deploy/alerts_test.yml" "$TMP/"
check "the alerts fire as tests/deploy/alerts_test.yml expects" \
    promtool test rules "$TMP/alerts_test.yml"

# The dashboard's expressions, as recording rules promtool can parse.
python3 - "$OBS/grafana-dashboard.json" "$TMP/dashboard-rules.yml" <<'PY'
import json, sys, yaml
dash = json.load(open(sys.argv[1]))
exprs = [t["expr"] for p in dash["panels"] for t in p.get("targets", [])]
rules = [{"record": "dashboard:expr_%d" % i, "expr": e}
         for i, e in enumerate(exprs)]
yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]},
               open(sys.argv[2], "w"))
PY
check "the dashboard is JSON with panels" \
    test "$(grep -c 'dashboard:expr_' "$TMP/dashboard-rules.yml")" -ge 10
check "every dashboard expression parses" \
    promtool check rules "$TMP/dashboard-rules.yml"

# Metrics they use against the names the code registers.
registered=$(grep -rhoE 'ks_metrics_family\([^"]*"kascade_[a-z_]+"' \
    "$ROOT"/router "$ROOT"/workers "$ROOT"/common | grep -oE 'kascade_[a-z_]+' | sort -u)
registered+=$'\n'$(grep -rhoE '"kascade_[a-z_]+",' "$ROOT"/router "$ROOT"/workers \
    "$ROOT"/common | grep -oE 'kascade_[a-z_]+' | sort -u)
for f in "$OBS/alerts.yml" "$OBS/grafana-dashboard.json"; do
    for m in $(grep -oE 'kascade_[a-z_]+' "$f" | sort -u); do
        base=$(sed -E 's/_(bucket|sum|count)$//' <<<"$m")
        check "$(basename "$f") uses $m, which the code registers" \
            grep -qx -e "$m" -e "$base" <<<"$registered"
    done
done
deploy_done observability
