#!/usr/bin/env bash
# README command 1: sets up what is missing, builds, and runs the demo on the embedded default
# (simulator + gateway on SQLite + host emulator with the adapter in its sidebar iframe).
# Ctrl-C stops every process it started.
set -euo pipefail
source "$(dirname "$0")/env.sh"
cd "$ROOT"

"$ROOT/scripts/bootstrap.sh"
echo "demo: building the widget (release)"
trunk build --release
echo "demo: building the gateway and the simulator"
cargo build --locked -p adapter-gateway -p adapter-simulator
exec node scripts/stack.mjs
