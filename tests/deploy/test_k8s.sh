#!/usr/bin/env bash
# tests/deploy/test_k8s.sh BUILD_DIR - deploy/k8s/kascade without a cluster
# (none here):
# 1. Helm v4 (HELM_VERSION, built once from the Go module proxy into
#    ${KASCADE_CACHE:-~/.cache/kascade}/helm-<version>/) lints the chart
#    and renders it with its default values and with
#    tests/deploy/k8s-values-trial.yaml; a values file that breaks a rule
#    (maxReplicas over the partitions, minReplicas 0) must fail to render.
# 2. tests/deploy/k8scheck (built once, keyed by a checksum of its sources)
#    decodes every rendered object strictly into its typed struct
#    (k8s.io/api, prometheus-operator monitoring/v1) and validates each
#    KEDA ScaledObject against the CRD schema and scaler fields of KEDA
#    KEDA_VERSION's module (config/crd/bases, pkg/scalers).
# 3. What the manifests use exists: each binary, flag and command (their
#    --help), the config file (loaded by the code's own config reader),
#    /healthz and /metrics (common/base/metrics.c), the topic and group
#    names (the code's), every metric name in a query (registered by the
#    code); and the scaling follows deploy/k8s/README.md: a worker
#    Deployment and ScaledObject per tier, maxReplicaCount <= partitions,
#    lagThreshold = M + ceil(M*T/L), the budget trigger exactly on tiers
#    with a daily budget, idle at zero where allowed, the drain inside the
#    grace period.
set -uo pipefail
source "$(dirname "$0")/lib.sh"
BIN=$(cd "${1:?usage: test_k8s.sh BUILD_DIR}" && pwd)/bin
CHART=$ROOT/deploy/k8s/kascade
SRC=$ROOT/tests/deploy/k8scheck
TRIAL=$ROOT/tests/deploy/k8s-values-trial.yaml
HELM_VERSION=v4.3.2
KEDA_VERSION=v2.20.2

command -v go >/dev/null 2>&1 || [ ! -x /usr/local/go/bin/go ] ||
    PATH=$PATH:/usr/local/go/bin
if ! command -v go >/dev/null 2>&1; then
    echo "FAIL: go not found (on PATH or in /usr/local/go): Helm and tests/deploy/k8scheck are built from the Go module proxy"
    exit 1
fi
export GOTOOLCHAIN=local GOFLAGS=-mod=readonly
CACHE=${KASCADE_CACHE:-$HOME/.cache/kascade}

# --- tools, built once ------------------------------------------------------
HELM=$CACHE/helm-$HELM_VERSION/helm
if [ ! -x "$HELM" ]; then
    echo "building helm $HELM_VERSION into $CACHE/helm-$HELM_VERSION (once; a few minutes)"
    mkdir -p "$CACHE/helm-$HELM_VERSION.tmp.$$" || exit 1
    if ! (cd "$TMP" && GOFLAGS= GOBIN="$CACHE/helm-$HELM_VERSION.tmp.$$" \
        go install "helm.sh/helm/v4/cmd/helm@$HELM_VERSION"); then
        rm -rf "$CACHE/helm-$HELM_VERSION.tmp.$$"
        echo "FAIL: could not build helm $HELM_VERSION (is the Go module proxy reachable?)"
        exit 1
    fi
    mkdir -p "$CACHE/helm-$HELM_VERSION" &&
        mv -f "$CACHE/helm-$HELM_VERSION.tmp.$$/helm" "$HELM" &&
        rm -rf "$CACHE/helm-$HELM_VERSION.tmp.$$" || exit 1
fi
key=$( (cat "$SRC/go.mod" "$SRC/go.sum" "$SRC"/*.go; go env GOVERSION) |
    sha256sum | cut -c1-16)
KC=$CACHE/k8scheck/k8scheck-$key
if [ ! -x "$KC" ]; then
    echo "building k8scheck into $CACHE/k8scheck (once; modules from the Go module proxy)"
    mkdir -p "$CACHE/k8scheck" || exit 1
    if ! (cd "$SRC" && go build -o "$KC.tmp.$$" .); then
        rm -f "$KC.tmp.$$"
        echo "FAIL: could not build tests/deploy/k8scheck"
        exit 1
    fi
    mv -f "$KC.tmp.$$" "$KC"
fi
# KEDA's CRDs and scaler sources: its module, from the module cache.
KEDA=$(cd "$TMP" && GOFLAGS= go mod download -json \
    "github.com/kedacore/keda/v2@$KEDA_VERSION" |
    python3 -c 'import json,sys; print(json.load(sys.stdin).get("Dir", ""))')
if [ ! -f "$KEDA/config/crd/bases/keda.sh_scaledobjects.yaml" ]; then
    echo "FAIL: no KEDA $KEDA_VERSION module (github.com/kedacore/keda/v2) from the Go module proxy"
    exit 1
fi
"$HELM" version --short | grep -q "^v4\." ||
    { echo "FAIL: $HELM is not Helm v4"; exit 1; }

# --- 1. Helm ----------------------------------------------------------------
check "helm lint --strict passes" \
    bash -c '"$1" lint --strict "$2" >"$3/lint.out" 2>&1 || { cat "$3/lint.out"; exit 1; }' \
    _ "$HELM" "$CHART" "$TMP"
render() { # render NAME [helm args...]: $TMP/NAME.yaml
    local name=$1
    shift
    "$HELM" template "$name" "$CHART" --namespace kascade "$@" \
        >"$TMP/$name.yaml" 2>"$TMP/$name.err" || { cat "$TMP/$name.err"; return 1; }
}
check "the chart renders with its default values" render default
check "the chart renders with tests/deploy/k8s-values-trial.yaml" \
    render trial -f "$TRIAL"
check "the chart renders without KEDA (fixed replicas)" \
    render nokeda --set keda.enabled=false --set serviceMonitor.enabled=false
refuses() { # refuses MESSAGE PYTHON: rendering with values.yaml changed by PYTHON (on v) fails, saying MESSAGE
    python3 -c 'import sys, yaml
v = yaml.safe_load(open(sys.argv[1]))
exec(sys.argv[2])
yaml.safe_dump(v, open(sys.argv[3], "w"))' "$CHART/values.yaml" "$2" "$TMP/refused.values.yaml" || return 1
    ! "$HELM" template refused "$CHART" -f "$TMP/refused.values.yaml" >/dev/null 2>"$TMP/refused.err" &&
        grep -qF -- "$1" "$TMP/refused.err" ||
        { echo "  expected a failure saying: $1"; cat "$TMP/refused.err"; return 1; }
}
check "maxReplicas over topics.partitions is refused" \
    refuses "exceeds topics.partitions 12" 'v["tiers"][1]["maxReplicas"] = 13'
check "minReplicas 0 is refused (scaleToZero says idle-at-zero)" \
    refuses "minReplicas must be >= 1" 'v["tiers"][0]["minReplicas"] = 0'
check "a tier listed twice is refused" \
    refuses "tier mid is listed twice" 'v["tiers"].append(dict(v["tiers"][1]))'
check "a misspelled tier value is refused (values.schema.json)" \
    refuses "additional properties 'maxReplica' not allowed" 'v["tiers"][0]["maxReplica"] = 3'
check "a tier without latencyMs is refused (lagThreshold needs it)" \
    refuses "missing property 'latencyMs'" 'del v["tiers"][2]["latencyMs"]'
check "tiers under config are refused (one list of tiers)" \
    refuses "put tiers in .Values.tiers" 'v["config"]["tiers"] = [{"name": "x"}]'

# --- 2. schemas -------------------------------------------------------------
for r in default trial nokeda; do
    check "$r: every object passes k8scheck (typed strict decode, KEDA $KEDA_VERSION CRD schema and scaler fields)" \
        bash -c '"$1" "$2/$3.yaml" "$4" >"$2/$3.facts"' _ "$KC" "$TMP" "$r" "$KEDA"
done

# --- 3. what the manifests use, and the scaling rules -------------------------
usage_of() { "$BIN/$1" --help 2>&1; }
registered_metrics=$(grep -rhoE 'ks_metrics_family\([^"]*"kascade_[a-z_]+"' \
    "$ROOT"/router "$ROOT"/workers "$ROOT"/common | grep -oE 'kascade_[a-z_]+' | sort -u)
registered_metrics+=$'\n'$(grep -rhoE '"kascade_[a-z_]+",' "$ROOT"/router "$ROOT"/workers \
    "$ROOT"/common | grep -oE 'kascade_[a-z_]+' | sort -u)
check "the code registers metrics (the list this test compares with)" \
    grep -qx kascade_budget_remaining_usd <<<"$registered_metrics"

rendered_checks() { # rendered_checks NAME VALUES-ARGS...
    local r=$1 facts=$TMP/$1.facts cfg
    shift
    facts() { awk -F'\t' -v k="$1" '$1 == k' "$facts" | cut -f2-; }
    [ -s "$facts" ] || { check "$r: facts" false; return; }
    cfg=$TMP/$r.yaml.kascade.json
    check "$r: the ConfigMap holds kascade.json" test -s "$cfg"
    check "$r: the code's config reader accepts kascade.json (it gets as far as Redis)" \
        bash -c 'out=$("$1" -c "$2" -X redis.url=redis://127.0.0.1:1 budget show 2>&1); rc=$?
                 [ $rc = 1 ] && grep -q "cannot reach Redis" <<<"$out" && ! grep -q "config:" <<<"$out" ||
                 { echo "  rc=$rc: $out"; exit 1; }' _ "$BIN/kascade" "$cfg"
    local tiers prefix parts drain_s port
    tiers=$(python3 -c 'import json,sys; print("\n".join(t["name"] for t in json.load(open(sys.argv[1]))["tiers"]))' "$cfg")
    read -r prefix parts drain_s port < <(python3 -c '
import json, sys
c = json.load(open(sys.argv[1]))
t = c.get("topics", {})
print(t.get("prefix", "kascade."), t.get("partitions", 6),
      (c.get("drain_timeout_ms", 30000) + 999) // 1000, c["metrics"]["port"])' "$cfg")
    check "$r: metrics listen on all addresses inside the pod" \
        python3 -c 'import json,sys; sys.exit(json.load(open(sys.argv[1]))["metrics"]["host"] != "0.0.0.0")' "$cfg"

    # Binaries, flags, commands.
    local id ct prog arg i seen_tiers="" a
    while IFS=$'\t' read -r -a f; do
        id=${f[0]} ct=${f[1]} prog=${f[2]}
        check "$r: $id runs $prog, one of the built binaries" test -x "$BIN/$prog"
        for ((i = 3; i < ${#f[@]}; i++)); do
            a=${f[i]}
            case $a in
            -*) check "$r: $prog takes $a" \
                    bash -c 'grep -qE -- "(^|[[ ])$2( |\]|$)" <<<"$1"' _ "$(usage_of "$prog")" "$a" ;;
            esac
            case $a in
            -c) check "$r: $id reads its config from the ConfigMap's mount" \
                    test "${f[i + 1]}" = /etc/kascade/kascade.json ;;
            --tier) seen_tiers+="${f[i + 1]}"$'\n'
                check "$r: tier ${f[i + 1]} is in kascade.json" grep -qx "${f[i + 1]}" <<<"$tiers" ;;
            esac
        done
        if [ "$prog" = kascade ]; then
            check "$r: kascade ${f[*]: -2} is a command" \
                bash -c 'grep -qF -- "$2" <<<"$1"' _ "$(usage_of kascade)" "${f[*]: -2}"
        fi
    done < <(facts cmd)
    check "$r: one worker Deployment per tier" \
        test "$(sort <<<"$seen_tiers" | sed '/^$/d')" = "$(sort <<<"$tiers")"
    check "$r: a router Deployment" \
        grep -qP '^Deployment/\S+-router\trouter\tkascade-router\t' <(facts cmd)

    # Probes and the metrics port.
    while IFS=$'\t' read -r id ct kind path p; do
        check "$r: $id $kind probe GET $path is served by common/base/metrics.c" \
            grep -qF "strcmp(url, \"$path\")" "$ROOT/common/base/metrics.c"
    done < <(facts probe)
    check "$r: readiness probes ask /healthz" \
        bash -c '[ -n "$1" ] && ! grep -vqP "\treadiness\t/healthz\t" <<<"$1"' _ "$(facts probe | grep -P '\treadiness\t')"
    check "$r: the containers' metrics port is metrics.port ($port)" \
        grep -qE "containerPort: $port\$" "$TMP/$r.yaml"
    while IFS=$'\t' read -r id secs; do
        check "$r: $id's grace period ($secs s) is above the drain (${drain_s} s)" \
            test "$secs" -gt "$drain_s"
    done < <(facts grace)

    # Scaling.
    local so target min max idle tier m lat t want lag
    local n_scaled
    n_scaled=$(facts scaled | wc -l)
    if grep -q 'keda.enabled=false' <<<"$*"; then
        check "$r: no ScaledObject without KEDA" test "$n_scaled" = 0
        return
    fi
    check "$r: a ScaledObject per tier" test "$n_scaled" = "$(wc -l <<<"$tiers")"
    while IFS=$'\t' read -r so target min max idle; do
        tier=$(facts trigger | awk -F'\t' -v s="$so" '$1 == s && $3 == "topic" {print $4}')
        tier=${tier#"${prefix}tier."}
        check "$r: $so scales a tier's worker Deployment" \
            grep -qP "^Deployment/$target\tworker\tkascade-worker\t.*--tier\t$tier\$" <(facts cmd)
        check "$r: $so maxReplicaCount $max <= topics.partitions $parts" test "$max" -le "$parts"
        check "$r: $so topic ${prefix}tier.$tier is the one the worker consumes and the router and topics create write" \
            bash -c 'grep -qF "\"tier.%s\", w->tier->name" "$1/workers/worker.c" &&
                     grep -qF "\"tier.%s\"" "$1/router/world.c" &&
                     grep -qF "\"tier.%s\"" "$1/cli/topics.c"' _ "$ROOT"
        check "$r: $so consumerGroup is the workers' group ${prefix}worker.$tier" \
            bash -c 'grep -qP "^\Q$1\E\tkafka\tconsumerGroup\t\Q$2\E$" <<<"$3" &&
                     grep -qF "\"worker.%s\"" "$4/workers/worker.c"' \
            _ "$so" "${prefix}worker.$tier" "$(facts trigger)" "$ROOT"
        read -r m lat t want_idle budget given < <(python3 - "$r" "$tier" "$CHART/values.yaml" "$TRIAL" "$cfg" <<'EOF'
import json, sys
import yaml
r, tier, defaults, trial, cfg = sys.argv[1:]
# The values as rendered: the tiers list of the values file used (a list
# replaces the default one in Helm), scaling.drainSeconds likewise.
def load(path):
    return yaml.safe_load(open(path))
vals = load(defaults)
if r == "trial":
    over = load(trial)
    vals["tiers"] = over["tiers"]
    vals["scaling"].update(over.get("scaling", {}))
t = next(x for x in vals["tiers"] if x["name"] == tier)
c = next(x for x in json.load(open(cfg))["tiers"] if x["name"] == tier)
print(c.get("max_inflight", 64), t["latencyMs"],
      t.get("drainSeconds", vals["scaling"]["drainSeconds"]),
      1 if t.get("scaleToZero") else 0,
      1 if c.get("daily_budget_usd") else 0,
      t.get("lagThreshold", 0))
EOF
        )
        if [ "$given" != 0 ]; then
            want=$given
        else
            want=$((m + (m * t * 1000 + lat - 1) / lat))
        fi
        lag=$(facts trigger | awk -F'\t' -v s="$so" '$1 == s && $3 == "lagThreshold" {print $4}')
        check "$r: $so lagThreshold $lag = M + ceil(M*T/L) (M=$m, T=${t}s, L=${lat}ms, override ${given})" \
            test "$lag" = "$want"
        if [ "$want_idle" = 1 ]; then
            check "$r: $so idles at zero (scaleToZero)" test "$idle" = 0
        else
            check "$r: $so keeps minReplicaCount when idle" test "$idle" = -
        fi
        if [ "$budget" = 1 ]; then
            check "$r: $so has a budget trigger combined with the lag (scalingModifiers, target = lagThreshold)" \
                bash -c 'grep -qP "^\Q$1\E\t.*\bbudget\b.*\blag\b.*\t\Q$2\E$" <<<"$3"' _ "$so" "$lag" "$(facts modifier)"
        else
            check "$r: $so (no daily budget) has no budget trigger" \
                bash -c '! grep -qP "^\Q$1\E\t" <<<"$2"' _ "$so" "$(facts promql)"
        fi
    done < <(facts scaled)
    local q name
    while IFS=$'\t' read -r so q; do
        for name in $(grep -oE 'kascade_[a-z_]+' <<<"$q" | sort -u); do
            check "$r: $so queries $name, which the code registers" \
                grep -qx "$name" <<<"$registered_metrics"
        done
        check "$r: $so budget query names its tier" \
            bash -c 'grep -qF "tier=\"$2\"" <<<"$1"' _ "$q" \
            "$(facts trigger | awk -F'\t' -v s="$so" '$1 == s && $3 == "topic" {print $4}' | sed "s/^${prefix//./\\.}tier\.//")"
    done < <(facts promql)
    while IFS=$'\t' read -r name p path; do
        check "$r: ServiceMonitor $name scrapes port $p at $path" \
            test "$p" = metrics -a "$path" = /metrics
    done < <(facts monitor)
    check "$r: a ServiceMonitor" test -n "$(facts monitor)"
}
rendered_checks default
rendered_checks trial
rendered_checks nokeda --set keda.enabled=false

# Secrets: every api_key_env of the trial config is a key of the Secret the
# pods take their environment from.
trial_keys=$(python3 -c '
import json, sys
for t in json.load(open(sys.argv[1]))["tiers"]:
    for p in t.get("providers", []):
        if p.get("api_key_env"): print(p["api_key_env"])' "$TMP/trial.yaml.kascade.json" | sort -u)
check "trial: the config names API keys by api_key_env" test -n "$trial_keys"
secret_name=$(awk -F'\t' '$1 == "envfrom" {print $3}' "$TMP/trial.facts" | sort -u)
check "trial: every pod takes its environment from one Secret" test "$(wc -l <<<"$secret_name")" = 1
for k in $trial_keys; do
    check "trial: Secret $secret_name holds $k" \
        python3 -c '
import sys, yaml
for d in yaml.safe_load_all(open(sys.argv[1])):
    if d and d["kind"] == "Secret" and d["metadata"]["name"] == sys.argv[2]:
        sys.exit(0 if sys.argv[3] in d.get("stringData", {}) else 1)
sys.exit(1)' "$TMP/trial.yaml" "$secret_name" "$k"
done
check "api_key_env is read by the worker (workers/worker.c)" \
    grep -q 'api_key_env' "$ROOT/workers/worker.c"
deploy_done test_k8s
