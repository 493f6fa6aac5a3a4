#!/usr/bin/env bash
# Webhook throughput with durability, measured with wrk against the release gateway on SQLite:
# every request is a new documented session event, recorded and shown on an agent's stream in a
# committed transaction before its answer. Prints wrk's figures, and /healthz on the same stack
# for comparison. A benchmark: it reports, it never fails on a figure. SOCKETS=N holds N agent
# WebSockets while wrk runs, and sends wrk's events to them (see scripts/bench/common.sh).
#
#   scripts/bench/webhooks.sh                 # 8 connections, 20 s
#   CONNECTIONS=32 DURATION=30s CRM_SYNC=false STORE_SYNC=normal scripts/bench/webhooks.sh
#   SOCKETS=2000 CONNECTIONS=4 scripts/bench/webhooks.sh
set -euo pipefail
source "$(dirname "$0")/../env.sh"
cd "$ROOT"
source scripts/bench/common.sh

CONNECTIONS=${CONNECTIONS:-8}
DURATION=${DURATION:-20s}
CRM_SYNC=${CRM_SYNC:-true}
STORE_SYNC=${STORE_SYNC:-full}

# BUILD=0 measures the release binaries already built.
[ "${BUILD:-1}" = 0 ] || cargo build --release --locked -q -p adapter-gateway -p adapter-simulator

export GATEWAY_CALL_WEBHOOK_USER=bench GATEWAY_CALL_WEBHOOK_PASSWORD=bench-secret
start_stack --dev-sign-in --crm-sync "$CRM_SYNC" --store-sync "$STORE_SYNC"

hold_sockets "$url" "sqlite://$work/data/gateway.sqlite3"
echo "== webhooks: POST /webhooks/ccai/calls, $CONNECTIONS connections, $DURATION, CRM sync $CRM_SYNC, store sync $STORE_SYNC$([ "$SOCKETS" -gt 0 ] && echo ", $SOCKETS sockets held")"
WEBHOOK_AUTH=$(printf 'bench:bench-secret' | base64) \
  wrk -t2 -c"$CONNECTIONS" -d"$DURATION" -s scripts/bench/webhook.lua "http://127.0.0.1:$gw_port"
report_sockets
recorded=$(python3 - "$work/data/gateway.sqlite3" <<'PY'
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
print(db.execute("select count(*) from webhook_events").fetchone()[0],
      db.execute("select count(*) from agent_events").fetchone()[0])
PY
)
echo "stored: webhook events, agent events (the newest 256 per agent are kept): $recorded"
echo
echo "== /healthz on the same stack, $CONNECTIONS connections, 10 s"
wrk -t2 -c"$CONNECTIONS" -d10s --latency "http://127.0.0.1:$gw_port/healthz" | grep -E "Requests/sec|50%|99%"
