# Sourced by the benchmarks: wrk (installed from Debian when missing), a free loopback port, and
# a work folder with the processes started in it, stopped and removed on exit.
# shellcheck shell=bash
as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }
if ! command -v wrk >/dev/null; then
  echo "bench: installing wrk (Debian)"
  as_root apt-get update -qq
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq wrk >/dev/null
fi

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
work=$(mktemp -d)
pids=()
cleanup() { kill "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

# start_stack [GATEWAY ARGUMENTS…]: the release simulator and gateway (data in the work folder,
# the simulator as its CCAI tenant and Kustomer org) on free ports, the gateway with these
# arguments too (and any GATEWAY_* variables exported); waits for /healthz. Sets sim_port,
# gw_port, url (the gateway) and sim (the simulator).
start_stack() {
  sim_port=$(free_port)
  gw_port=$(free_port)
  target/release/adapter-simulator --listen "127.0.0.1:$sim_port" --host-listen 127.0.0.1:0 \
    >"$work/simulator.log" 2>&1 &
  pids+=($!)
  RUST_LOG=warn target/release/adapter-gateway --listen "127.0.0.1:$gw_port" \
    --data-dir "$work/data" --ccai-url "http://127.0.0.1:$sim_port" \
    --kustomer-url "http://127.0.0.1:$sim_port" "$@" >"$work/gateway.log" 2>&1 &
  pids+=($!)
  url="http://127.0.0.1:$gw_port"
  sim="http://127.0.0.1:$sim_port"
  for _ in $(seq 200); do
    curl -sf "$url/healthz" >/dev/null && return 0
    sleep 0.05
  done
  cat "$work/gateway.log"
  return 1
}

# SOCKETS=N (environment): agent WebSockets held while wrk runs. Each socket is a descriptor in
# a gateway, two in a load balancer and one in the example: the open-files limit goes up to
# the hard one. All of them come from one address, so the stream caps go up too.
SOCKETS=${SOCKETS:-0}
if [ "$SOCKETS" -gt 0 ]; then
  ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
  export GATEWAY_MAX_STREAMS_PER_AGENT=100000 GATEWAY_MAX_STREAMS_PER_ADDRESS=100000
  [ "${BUILD:-1}" = 0 ] || cargo build --release --locked -q -p adapter-gateway --example load
fi

# hold_sockets URL DATABASE_URL: with SOCKETS, opens them through URL (two per agent; sessions
# issued in the store at DATABASE_URL for agents 100003 up) with examples/load, held for
# DURATION and 5 s more, and points wrk's events (webhook.lua) at those agents.
hold_sockets() {
  [ "$SOCKETS" -gt 0 ] || return 0
  local agents=$(((SOCKETS + 1) / 2))
  [ "$agents" -ge 4 ] || agents=4
  LOAD_DATABASE_URL=$2 target/release/examples/load --gateway "$1" --sockets "$SOCKETS" \
    --agents "$agents" --hold $((${DURATION%s} + 5)) >"$work/sockets.out" 2>"$work/sockets.err" &
  load_pid=$!
  pids+=("$load_pid")
  for _ in $(seq 600); do
    grep -q "holding" "$work/sockets.err" 2>/dev/null && break
    kill -0 "$load_pid" 2>/dev/null || break
    sleep 0.5
  done
  grep -q "holding" "$work/sockets.err" || { cat "$work/sockets.err" "$work/sockets.out"; exit 1; }
  export AGENT_BASE=100003 AGENT_COUNT=$((agents - 3))
}

# report_sockets: waits for the held sockets' report and prints it.
report_sockets() {
  [ "$SOCKETS" -gt 0 ] || return 0
  wait "$load_pid" || echo "sockets: something did not hold (see below)"
  cat "$work/sockets.out"
}
