#!/usr/bin/env bash
# Scale: does a request cost the same with ten million rows as with ten
# thousand? Fills a Postgres database with sessions, refresh tokens and audit
# events generated in SQL, runs the refresh, prompt=none and full-login
# scenarios at a small and at a large size, counts sequential scans on the big
# tables during the runs, prints the hot statements' plans, then soaks the
# janitor: with rows expiring every second under load, the expired rows stay
# bounded. Not part of CI; results in docs/benchmarks.md#scale.
#
#   bash bench/scale.sh                      # 10,000 then 10,000,000 rows
#   ROWS=1000000 SECS=5 bash bench/scale.sh  # a quicker run
set -euo pipefail
cd "$(dirname "$0")/.."

ROWS="${ROWS:-10000000}"
SMALL="${SMALL:-10000}"
SECS="${SECS:-10}"
SOAK_SECS="${SOAK_SECS:-180}"
PG_ADMIN="${TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/test}"
PORT="${PORT:-18081}"
BASE="http://127.0.0.1:${PORT}"
DB="sesame_scale_$$"
URL="${PG_ADMIN%/*}/$DB"

cargo build --release --locked --bin sesame --example loadgen >&2
BIN=target/release/sesame
GEN=target/release/examples/loadgen
WORK="$(mktemp -d)"
SERVER_PID=""
cleanup() {
    [ -n "$SERVER_PID" ] && kill "$SERVER_PID" 2>/dev/null || true
    psql "$PG_ADMIN" -qc "DROP DATABASE IF EXISTS $DB WITH (FORCE)" >/dev/null 2>&1 || true
    rm -rf "$WORK"
}
trap cleanup EXIT
sql() { psql "$URL" -qAt -v ON_ERROR_STOP=1 "$@"; }

psql "$PG_ADMIN" -qc "CREATE DATABASE $DB" >/dev/null
export SESAME_MASTER_KEY="$($BIN keys new-master-key)"
export SESAME_ISSUER="$BASE" SESAME_LISTEN="127.0.0.1:${PORT}" SESAME_LOG_LEVEL=warn
export SESAME_DATABASE_URL="$URL?sslmode=disable" SESAME_RATE_LIMIT__ENABLED=false
$BIN migrate >/dev/null
$BIN client add --name spa --id spa --public --first-party --id-token-alg EdDSA \
    --redirect-uri http://127.0.0.1:9/cb --json >/dev/null
echo 'bench password 1' | $BIN user add --email bench@example.com --password-stdin >/dev/null
export BENCH_SPA_ID=spa BENCH_REDIRECT=http://127.0.0.1:9/cb BENCH_EMAIL=bench@example.com BENCH_PASSWORD='bench password 1'

# Rows up to `n` in each big table: 1 user per 100 sessions; a tenth of the
# sessions and refresh tokens already expired (the janitor's backlog).
fill() { # from to
    local from=$1 to=$2 now
    now=$(date +%s)
    sql <<SQL
INSERT INTO users (user_id, email, email_normalized, email_verified, disabled, created_at, updated_at)
SELECT 'u' || i, 'u' || i || '@example.com', 'u' || i || '@example.com', true, false, $now, $now
FROM generate_series($from / 100 + 1, $to / 100 + 1) AS i ON CONFLICT DO NOTHING;
INSERT INTO sessions (id_hash, sid, user_id, auth_time, amr, created_at, last_seen_at, idle_expires_at, expires_at)
SELECT md5('s' || i) || md5('t' || i), 'sid' || i, 'u' || (i / 100 + 1), $now, '["pwd"]', $now, $now,
       CASE WHEN i % 10 = 0 THEN $now - 60 ELSE $now + 86400 END, $now + 86400
FROM generate_series($from + 1, $to) AS i;
INSERT INTO refresh_tokens (token_hash, grant_id, client_id, user_id, sid, scope, auth_time, amr, offline,
                            created_at, expires_at, grant_expires_at)
SELECT md5('r' || i) || md5('q' || i), 'g' || i, 'spa', 'u' || (i / 100 + 1), 'sid' || i, 'openid', $now,
       '["pwd"]', false, $now, $now + 86400, CASE WHEN i % 10 = 0 THEN $now - 60 ELSE $now + 86400 END
FROM generate_series($from + 1, $to) AS i;
INSERT INTO audit_events (at, type, outcome, user_id, email, client_id, ip, request_id, method)
SELECT ($now::bigint - 86400 + i % 86400) * 1000, 'token_refreshed', 'success', 'u' || (i / 100 + 1),
       'u' || (i / 100 + 1) || '@example.com', 'spa', '198.51.100.' || (i % 250), md5('x' || i), 'pwd'
FROM generate_series($from + 1, $to) AS i;
ANALYZE;
SQL
}

seq_scans() {
    sql -c "SELECT coalesce(sum(seq_scan), 0) FROM pg_stat_user_tables
            WHERE relname IN ('sessions', 'refresh_tokens', 'audit_events', 'users', 'session_clients')"
}

expired() {
    sql -c "SELECT (SELECT count(*) FROM sessions WHERE idle_expires_at <= extract(epoch from now())::bigint
                     OR expires_at <= extract(epoch from now())::bigint)
                 || ' expired sessions, ' ||
                   (SELECT count(*) FROM refresh_tokens WHERE grant_expires_at <= extract(epoch from now())::bigint)
                 || ' expired refresh tokens'"
}
start_server() {
    $BIN serve >"$WORK/server.log" 2>&1 &
    SERVER_PID=$!
    until curl -sf "$BASE/readyz" >/dev/null 2>&1; do sleep 0.05; done
}
stop_server() { kill -TERM "$SERVER_PID"; wait "$SERVER_PID" || true; SERVER_PID=""; }

measure() { # label
    # The janitor's first pass runs at start (here with a backlog of a tenth
    # of the rows expired): let it finish before measuring, and say how long
    # it took.
    export SESAME_DATABASE__PURGE_INTERVAL_SECS=86400
    local t0=$SECONDS
    start_server
    until [ "$(expired)" = "0 expired sessions, 0 expired refresh tokens" ]; do sleep 1; done
    echo "| $1 | the janitor's first pass, while serving: backlog gone in $((SECONDS - t0)) s | | | | |"
    local before after
    before=$(seq_scans)
    for scenario in refresh:32 prompt-none:32 login:8; do
        out=$($GEN --base "$BASE" --scenario "${scenario%:*}" --concurrency "${scenario#*:}" --secs "$SECS")
        python3 - "$1" "${scenario%:*}" "$out" <<'PY'
import json, sys
label, sc, o = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
print(f"| {label} | {sc} | {o['rps']:.0f} | {o['p50_ms']} | {o['p99_ms']} | {o['errors']} |")
PY
    done
    after=$(seq_scans)
    echo "| $1 | sequential scans of the big tables during the runs | $((after - before)) | | | |"
    stop_server
}

echo "| rows | scenario | requests/s | p50 ms | p99 ms | errors |"
echo "|---|---|---|---|---|---|"
fill 0 "$SMALL"
measure "$SMALL"
start=$(date +%s)
fill "$SMALL" "$ROWS"
echo "| $ROWS | filled in $(( $(date +%s) - start )) s; database $(sql -c "SELECT pg_size_pretty(pg_database_size('$DB'))") | | | | |"
echo "| $ROWS | janitor backlog before the start: $(expired) | | | | |"
measure "$ROWS"

echo
echo "Plans of the hot statements at $ROWS rows:"
hash=$(sql -c "SELECT token_hash FROM refresh_tokens LIMIT 1")
sid_hash=$(sql -c "SELECT id_hash FROM sessions LIMIT 1")
for q in \
    "SELECT * FROM refresh_tokens WHERE token_hash = '$hash'" \
    "SELECT * FROM sessions WHERE id_hash = '$sid_hash'" \
    "SELECT * FROM users WHERE email_normalized = 'bench@example.com'" \
    "SELECT id FROM audit_events WHERE user_id = 'u5' ORDER BY at DESC, id DESC LIMIT 50" \
    "SELECT id_hash FROM sessions WHERE idle_expires_at <= $(date +%s) LIMIT 2000" \
    "SELECT token_hash FROM refresh_tokens WHERE grant_expires_at <= $(date +%s) LIMIT 2000"; do
    echo "- \`${q:0:90}\`: $(sql -c "EXPLAIN $q" | grep -o 'Index Scan[^(]*\|Index Only Scan[^(]*\|Bitmap Index Scan[^(]*\|Seq Scan[^(]*' | head -1)"
done

echo
echo "Janitor soak: sessions idle out after 30 s, the janitor runs every 20 s, full logins for ${SOAK_SECS} s"
echo "- before: $(expired)"
export SESAME_DATABASE__PURGE_INTERVAL_SECS=20 SESAME_SESSION__IDLE_TIMEOUT_SECS=30
start_server
# Every full login makes a session that idles out 30 s later.
$GEN --base "$BASE" --scenario login --concurrency 8 --secs "$SOAK_SECS" >"$WORK/soak.json" &
gen=$!
for t in $(seq 30 30 "$SOAK_SECS"); do
    sleep 30
    echo "- after $t s of logins: $(expired)"
done
wait "$gen"
load=$(python3 - "$WORK/soak.json" <<'PY'
import json, sys
o = json.load(open(sys.argv[1]))
print("%.0f/s, p50 %s ms, %s errors" % (o["rps"], o["p50_ms"], o["errors"]))
PY
)
echo "- load: $load"
stop_server
