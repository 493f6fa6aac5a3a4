#!/usr/bin/env bash
# Status changes, measured with wrk against the release gateway and the simulated tenant: how
# long `PUT /api/v1/status` takes (the gateway answers once the platform has the change, so this
# is the dropdown-to-platform time) at an ordinary pace and in a burst, and how many requests
# over the tenant's 10 per second the simulated tenant had to refuse (429: must be 0).
# A benchmark: it reports, it never fails on a figure.
#
#   scripts/bench/status.sh                       # ordinary pace: 3 agents, one change every 250 ms
#   DURATION=30s BUILD=0 scripts/bench/status.sh
set -euo pipefail
source "$(dirname "$0")/../env.sh"
cd "$ROOT"
source scripts/bench/common.sh

DURATION=${DURATION:-20s}

if [ "${BUILD:-1}" != 0 ]; then
  cargo build --release --locked -q -p adapter-gateway -p adapter-simulator
fi

start_stack --crm-sync false --dev-sign-in

# The simulated tenant's three agents, signed in (development sign-in: loopback only).
tokens=""
for email in ada.lovelace@example.com grace.hopper@example.com alan.turing@example.com; do
  token=$(curl -sf -X POST "$url/api/v1/sessions" -H 'content-type: application/json' \
    -d "{\"email\":\"$email\",\"kustomer_user\":{\"id\":\"u-$email\",\"email\":\"$email\"}}" |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')
  tokens="$tokens $token"
done
export STATUS_TOKENS=$tokens STATUS_A=-2 STATUS_B=-4   # Break, Meal

rate_limited() { curl -sf "$sim/_sim/state" | python3 -c 'import json,sys; print(json.load(sys.stdin)["ccai"]["rate_limited"])'; }
requests() { curl -sf "$sim/_sim/state" | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["ccai"]["status_requests"]))'; }

# The sign-ins read the directory; let the tenant's budget fill again before measuring.
sleep 2
echo "== ordinary pace: 1 connection, a change every 250 ms (3 agents in turn), $DURATION"
before=$(requests)
STATUS_EVERY_MS=250 wrk -t1 -c1 -d"$DURATION" -s scripts/bench/status.lua "$url" |
  grep -E "^requests|^latency"
echo "agent_statuses calls the tenant received: $(($(requests) - before)); answered 429 so far: $(rate_limited)"

sleep 2
echo
echo "== burst: 30 connections, as fast as they go (3 agents), 10 s"
before=$(requests)
STATUS_EVERY_MS=0 wrk -t1 -c30 -d10s -s scripts/bench/status.lua "$url" |
  grep -E "^requests|^latency"
echo "agent_statuses calls the tenant received: $(($(requests) - before)); answered 429 so far: $(rate_limited)"
