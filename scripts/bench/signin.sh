#!/usr/bin/env bash
# Sign-in under load, measured with wrk against the release gateway with an agents file (argon2
# hashes with the gateway's parameters): the throughput of right and of wrong passwords on this
# machine, and /healthz's latency while a flood of wrong passwords runs (the password checks
# must not hold up the async workers that answer everyone else). The throttles are opened wide
# here, to measure what is behind them; with the defaults a single address gets 30 attempts a
# minute. A benchmark: it reports, it never fails on a figure.
#
#   scripts/bench/signin.sh                  # 16 connections, 15 s each
#   CONNECTIONS=64 DURATION=30s BUILD=0 scripts/bench/signin.sh
set -euo pipefail
source "$(dirname "$0")/../env.sh"
cd "$ROOT"
source scripts/bench/common.sh

CONNECTIONS=${CONNECTIONS:-16}
DURATION=${DURATION:-15s}

# BUILD=0 measures the release binaries already built.
if [ "${BUILD:-1}" != 0 ]; then
  cargo build --release --locked -q -p adapter-gateway -p adapter-simulator
  cargo build --release --locked -q -p adapter-gateway --example hash_password
fi

email=ada.lovelace@example.com
password=bench-password-$RANDOM
hash=$(printf '%s' "$password" | target/release/examples/hash_password)
printf '[{"email": "%s", "password_hash": "%s"}]\n' "$email" "$hash" >"$work/agents.json"

start_stack --agents-file "$work/agents.json" --crm-sync false \
  --sign-in-per-minute 100000 --sign-in-failures-per-minute 100000 --sessions-per-agent 1000

echo "== /healthz alone, 8 connections, 10 s"
wrk -t1 -c8 -d10s --latency "$url/healthz" | grep -E "Requests/sec|50%|99%"

echo
echo "== right passwords: POST /api/v1/sessions, $CONNECTIONS connections, $DURATION"
SIGN_IN_EMAIL=$email SIGN_IN_PASSWORD=$password \
  wrk -t1 -c"$CONNECTIONS" -d"$DURATION" -s scripts/bench/signin.lua "$url" |
  grep -E "Requests/sec|Latency|Non-2xx|requests in"

echo
echo "== wrong passwords, $CONNECTIONS connections, $DURATION, and /healthz (8 connections) meanwhile"
SIGN_IN_EMAIL=$email SIGN_IN_PASSWORD=wrong \
  wrk -t1 -c"$CONNECTIONS" -d"$DURATION" -s scripts/bench/signin.lua "$url" >"$work/flood.txt" &
flood=$!
sleep 1
wrk -t1 -c8 -d10s --latency "$url/healthz" | grep -E "Requests/sec|50%|75%|90%|99%" |
  sed 's/^/  healthz during the flood: /'
wait "$flood"
grep -E "Requests/sec|Latency|Non-2xx|requests in" "$work/flood.txt" | sed 's/^/  flood: /'
