#!/usr/bin/env bash
# Webhook throughput of gateway replicas on one PostgreSQL store, measured with wrk: a
# throw-away PostgreSQL cluster (scripts/postgres.sh), the release simulator, REPLICAS release
# gateways on it and, with more than one, HAProxy (Debian's, which scripts/bootstrap.sh
# installs) in front, round robin, WebSockets included. Every request is a new documented session event, recorded
# and committed (and announced to every replica) before its answer. A benchmark: it reports,
# it never fails on a figure. scripts/bench/webhooks.sh is the same load on SQLite.
#
# SOCKETS=N: N agent WebSockets (two per agent, sessions issued in the store) are opened through
# the same address (HAProxy, or the one gateway) and held by `examples/load --gateway … --hold`
# while wrk runs, and wrk's events go to those agents: the webhook figures are then with N live
# streams receiving them; the example reports what the sockets received (gaps, closes).
#
#   scripts/bench/replicas.sh                     # 2 replicas behind HAProxy, 8 connections, 20 s
#   REPLICAS=1 CONNECTIONS=32 DURATION=30s scripts/bench/replicas.sh
#   SOCKETS=4000 CONNECTIONS=4 scripts/bench/replicas.sh
set -euo pipefail
source "$(dirname "$0")/../env.sh"
cd "$ROOT"
source scripts/bench/common.sh

REPLICAS=${REPLICAS:-2}
CONNECTIONS=${CONNECTIONS:-8}
DURATION=${DURATION:-20s}
CRM_SYNC=${CRM_SYNC:-true}

if [ "$REPLICAS" -gt 1 ] && [ ! -x /usr/sbin/haproxy ]; then
  echo "bench: HAProxy is missing: run scripts/bootstrap.sh" >&2
  exit 1
fi
[ "${BUILD:-1}" = 0 ] || cargo build --release --locked -q -p adapter-gateway -p adapter-simulator

# The cluster runs as the postgres user: its folder is outside the (private) work folder.
pg_dir=$(mktemp -d /tmp/adapter-pg.XXXXXX)
pg_url=$(scripts/postgres.sh start "$pg_dir" "$(free_port)")
trap 'scripts/postgres.sh stop "$pg_dir" 2>/dev/null; rm -rf "$pg_dir" "$pg_dir.initdb.log"; cleanup' EXIT
export GATEWAY_DATABASE_URL=$pg_url/bench
export GATEWAY_CALL_WEBHOOK_USER=bench GATEWAY_CALL_WEBHOOK_PASSWORD=bench-secret

sim_port=$(free_port)
target/release/adapter-simulator --listen "127.0.0.1:$sim_port" --host-listen 127.0.0.1:0 \
  >"$work/simulator.log" 2>&1 &
pids+=($!)
servers=""
for i in $(seq "$REPLICAS"); do
  port=$(free_port)
  RUST_LOG=warn target/release/adapter-gateway --listen "127.0.0.1:$port" --data-dir "$work/data-$i" \
    --ccai-url "http://127.0.0.1:$sim_port" --kustomer-url "http://127.0.0.1:$sim_port" \
    --dev-sign-in --crm-sync "$CRM_SYNC" >"$work/gateway-$i.log" 2>&1 &
  pids+=($!)
  for _ in $(seq 200); do curl -sf "http://127.0.0.1:$port/healthz" >/dev/null && break; sleep 0.05; done
  curl -sf "http://127.0.0.1:$port/healthz" >/dev/null || { cat "$work/gateway-$i.log"; exit 1; }
  servers+="    server gateway-$i 127.0.0.1:$port check"$'\n'
  url="http://127.0.0.1:$port"
done
if [ "$REPLICAS" -gt 1 ]; then
  lb_port=$(free_port)
  cat >"$work/haproxy.cfg" <<CFG
global
    # Two descriptors a connection, within this shell's open-files limit.
    maxconn $((($(ulimit -n) - 200) / 2))
defaults
    mode http
    timeout connect 2s
    timeout client 60s
    timeout server 60s
    timeout tunnel 1h
frontend adapter
    bind 127.0.0.1:$lb_port
    default_backend gateways
backend gateways
    balance roundrobin
    option httpchk GET /healthz
$servers
CFG
  /usr/sbin/haproxy -f "$work/haproxy.cfg" >"$work/haproxy.log" 2>&1 &
  pids+=($!)
  url="http://127.0.0.1:$lb_port"
  for _ in $(seq 100); do curl -sf "$url/healthz" >/dev/null && break; sleep 0.05; done
fi

hold_sockets "$url" "$GATEWAY_DATABASE_URL"
echo "== webhooks on PostgreSQL: $REPLICAS replica(s)$([ "$REPLICAS" -gt 1 ] && echo " behind HAProxy"), $CONNECTIONS connections, $DURATION, CRM sync $CRM_SYNC$([ "$SOCKETS" -gt 0 ] && echo ", $SOCKETS sockets held")"
WEBHOOK_AUTH=$(printf 'bench:bench-secret' | base64) \
  wrk -t2 -c"$CONNECTIONS" -d"$DURATION" -s scripts/bench/webhook.lua "$url"
report_sockets
echo "stored: webhook events, agent events (the newest 256 per agent are kept):" \
  "$(psql "$GATEWAY_DATABASE_URL" -Atc 'select (select count(*) from webhook_events) || '"' '"' || (select count(*) from agent_events)')"
