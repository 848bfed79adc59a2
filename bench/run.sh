#!/usr/bin/env bash
# Reproducible benchmark: starts a release build of Sesame on SQLite and on
# Postgres, drives it with examples/loadgen.rs on the same machine, and prints
# a Markdown table (requests/s, p50/p99 latency, RSS). See docs/benchmarks.md.
#
#   bash bench/run.sh                 # both backends, 10 s per scenario
#   SECS=5 BACKENDS=sqlite bash bench/run.sh
#   BENCH_BIN=/path/to/other/sesame bash bench/run.sh   # another build (A/B)
set -euo pipefail
cd "$(dirname "$0")/.."

SECS="${SECS:-10}"
BACKENDS="${BACKENDS:-sqlite postgres}"
PG_ADMIN="${TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/test}"
PORT="${PORT:-18080}"
BASE="http://127.0.0.1:${PORT}"

cargo build --release --locked --bin sesame --example loadgen >&2
BIN="${BENCH_BIN:-target/release/sesame}"
GEN=target/release/examples/loadgen
WORK="$(mktemp -d)"
SERVER_PID=""
cleanup() { [ -n "$SERVER_PID" ] && kill "$SERVER_PID" 2>/dev/null || true; rm -rf "$WORK"; }
trap cleanup EXIT

rss_kb() { awk '/VmRSS/ {print $2}' "/proc/$1/status"; }
# CPU time (user + system, in clock ticks) the server has used so far.
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
TICKS=$(getconf CLK_TCK)

export SESAME_MASTER_KEY="$($BIN keys new-master-key)"
export SESAME_ISSUER="$BASE" SESAME_LISTEN="127.0.0.1:${PORT}" SESAME_LOG_LEVEL="warn,sesame::cli=info"
# One load generator on one address is, to the rate limiter, an attack: measure the server, not the limiter.
export SESAME_RATE_LIMIT__ENABLED=false

echo "| backend | scenario | concurrency | requests/s | p50 ms | p99 ms | errors | server CPU per op | server RSS after |"
echo "|---|---|---|---|---|---|---|---|---|"
for backend in $BACKENDS; do
    if [ "$backend" = sqlite ]; then
        export SESAME_DATABASE_URL="sqlite://$WORK/sesame.db"
        export SESAME_DATABASE__MAX_CONNECTIONS=4
    else
        db="sesame_bench_$$"
        psql "$PG_ADMIN" -qc "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db" >/dev/null
        export SESAME_DATABASE_URL="${PG_ADMIN%/*}/$db?sslmode=disable"
        export SESAME_DATABASE__MAX_CONNECTIONS=16
    fi
    $BIN migrate >/dev/null
    # One machine client per algorithm, one public SPA client, one user.
    for alg in EdDSA ES256 RS256; do
        $BIN client add --name "cc-$alg" --id "cc-$alg" --grant-type client_credentials --id-token-alg "$alg" --json \
            | python3 -c 'import json,sys; print(json.load(sys.stdin)["client_secret"])' > "$WORK/secret-$alg"
    done
    $BIN client add --name spa --id spa --public --first-party --id-token-alg EdDSA \
        --redirect-uri http://127.0.0.1:9/cb --json >/dev/null
    echo 'bench password 1' | $BIN user add --email bench@example.com --password-stdin >/dev/null

    # First start generates the signing keys (RSA keygen dominates); the restart
    # is what a deployment sees on every later start.
    for start in first restart; do
        start_ns=$(date +%s%N)
        $BIN serve > "$WORK/server.log" 2>&1 &
        SERVER_PID=$!
        until curl -sf "$BASE/readyz" >/dev/null 2>&1; do sleep 0.002; done
        ready_ms=$(( ($(date +%s%N) - start_ns) / 1000000 ))
        startup_ms=$(grep -o "startup_ms=[0-9]*" "$WORK/server.log" | cut -d= -f2 || true)
        sleep 1
        idle_kb=$(rss_kb "$SERVER_PID")
        echo "| $backend | $start start | | | | | | | ${ready_ms} ms to /readyz (${startup_ms} ms in-process), idle RSS $((idle_kb / 1024)) MB |"
        if [ "$start" = first ]; then kill -TERM "$SERVER_PID"; wait "$SERVER_PID" || true; fi
    done

    export BENCH_SPA_ID=spa BENCH_REDIRECT=http://127.0.0.1:9/cb BENCH_EMAIL=bench@example.com BENCH_PASSWORD='bench password 1'
    run() { # scenario concurrency label
        before=$(cpu_ticks "$SERVER_PID")
        out=$($GEN --base "$BASE" --scenario "$1" --concurrency "$2" --secs "$SECS")
        used=$(( $(cpu_ticks "$SERVER_PID") - before ))
        rss=$(( $(rss_kb "$SERVER_PID") / 1024 ))
        python3 - "$backend" "$3" "$out" "$rss" "$used" "$TICKS" <<'PY'
import json, sys
b, label, out, rss, used, hz = sys.argv[1], sys.argv[2], json.loads(sys.argv[3]), sys.argv[4], int(sys.argv[5]), int(sys.argv[6])
per_op = used / hz / max(out['ok'], 1) * 1e6
print(f"| {b} | {label} | {out['concurrency']} | {out['rps']:.0f} | {out['p50_ms']} | {out['p99_ms']} | {out['errors']} | {per_op:.0f} µs | {rss} MB |")
PY
    }
    for alg in EdDSA ES256 RS256; do
        export BENCH_CLIENT_ID="cc-$alg" BENCH_CLIENT_SECRET="$(cat "$WORK/secret-$alg")"
        run cc 64 "client_credentials $alg"
    done
    run refresh 32 "refresh_token (rotation)"
    run refresh-dpop 32 "refresh_token (rotation, DPoP-bound)"
    run prompt-none 32 "/authorize prompt=none (code issued)"
    run login 8 "full login (authorize, login box, code, token)"

    kill -TERM "$SERVER_PID"; wait "$SERVER_PID" || true; SERVER_PID=""
    if [ "$backend" = postgres ]; then psql "$PG_ADMIN" -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null; fi
    unset SESAME_DATABASE__MAX_CONNECTIONS
done
