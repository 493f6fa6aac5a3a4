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
