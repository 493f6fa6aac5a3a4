#!/usr/bin/env bash
# README command 2: every check and every test layer. Prints each layer's counts and exits
# non-zero when anything fails. .ci/run calls exactly this.
set -uo pipefail
source "$(dirname "$0")/env.sh"
cd "$ROOT"

"$ROOT/scripts/bootstrap.sh" || exit 1

# Everything the tests write to temporary folders (the gateways' data folders, the stacks' logs,
# Chromium's profiles at some 85 MB a browser) goes in one folder of this run, removed at exit:
# runs used to leave gigabytes in /tmp.
run_tmp=$(mktemp -d "${TMPDIR:-/tmp}/adapter-test-run.XXXXXX")
export TMPDIR=$run_tmp
trap 'rm -rf "$run_tmp"' EXIT

logs=$(mktemp -d)
failed=()
declare -A passed_of failed_of
started=$(date +%s)

step() { echo; echo "=== $1"; }
# Sums cargo's and wasm-bindgen-test's "test result: ... N passed; M failed" lines.
count_cargo() {
  local p f
  read -r p f < <(awk '/^test result:/ {
      for (i = 1; i < NF; i++) { if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i }
    } END { print p + 0, f + 0 }' "$1")
  passed_of[$2]=$p
  failed_of[$2]=$f
}

# Runs the end-to-end suite and counts it as layer $1.
run_e2e() {
  local p f
  rm -f e2e/results/results.json
  npx playwright test --config e2e/playwright.config.mjs || failed+=("end-to-end tests ($1)")
  if [ -f e2e/results/results.json ]; then
    read -r p f < <(node -e '
      const s = require("./e2e/results/results.json").stats;
      console.log(`${s.expected + s.flaky} ${s.unexpected}`);')
    passed_of[$1]=$p
    failed_of[$1]=$f
  else
    failed+=("end-to-end results missing ($1)")
  fi
}

step "format (cargo fmt --check)"
cargo fmt --all --check || failed+=("format")

step "lint, native (clippy -D warnings)"
cargo clippy --locked --workspace --all-targets -- -D warnings || failed+=("clippy native")

step "lint, wasm32 widget (clippy -D warnings)"
cargo clippy --locked -p kustomer-adapter --target wasm32-unknown-unknown --all-targets -- -D warnings ||
  failed+=("clippy wasm32")

step "layer 1: native tests (cargo test --workspace)"
cargo test --locked --workspace --no-fail-fast 2>&1 | tee "$logs/native.log"
[ "${PIPESTATUS[0]}" -eq 0 ] || failed+=("native tests")
count_cargo "$logs/native.log" native

step "layer 1, PostgreSQL: the gateway's tests again, on a throw-away PostgreSQL cluster"
# Every gateway test whose store is opened through DatabaseUrl::for_tests gets a database of its
# own on this server (named after its data folder). The cluster lives outside the run's folder:
# its server runs as the postgres user, which cannot enter a folder private to this one.
pg_dir=$(mktemp -d /tmp/adapter-pg.XXXXXX)
pg_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
trap 'scripts/postgres.sh stop "$pg_dir" 2>/dev/null; rm -rf "$run_tmp" "$pg_dir" "$pg_dir.initdb.log"' EXIT
if pg_url=$(scripts/postgres.sh start "$pg_dir" "$pg_port"); then
  GATEWAY_TEST_DATABASE_URL=$pg_url cargo test --locked -p adapter-gateway --no-fail-fast 2>&1 |
    tee "$logs/native-pg.log"
  [ "${PIPESTATUS[0]}" -eq 0 ] || failed+=("native tests on PostgreSQL")
  count_cargo "$logs/native-pg.log" postgres
else
  pg_url=
  failed+=("PostgreSQL cluster")
fi

step "layer 2: browser tests (wasm-bindgen-test in headless Chromium)"
# A server on another port for the cross-origin frame tests: the simulator, on a fixed port so
# the test binary (which reads the address at compile time) is not rebuilt on every run.
export ADAPTER_TEST_FOREIGN_SERVER=http://127.0.0.1:8791
cargo build --locked -q -p adapter-simulator || failed+=("simulator build")
target/debug/adapter-simulator --listen 127.0.0.1:8791 --host-listen 127.0.0.1:0 >"$logs/foreign.log" 2>&1 &
foreign_pid=$!
for _ in $(seq 100); do curl -sf "$ADAPTER_TEST_FOREIGN_SERVER/healthz" >/dev/null && break; sleep 0.1; done
cargo test --locked -p kustomer-adapter --target wasm32-unknown-unknown --no-fail-fast 2>&1 | tee "$logs/wasm.log"
[ "${PIPESTATUS[0]}" -eq 0 ] || failed+=("browser tests")
kill "$foreign_pid" 2>/dev/null
wait "$foreign_pid" 2>/dev/null
count_cargo "$logs/wasm.log" browser

step "release build of the widget, size report and budget"
if trunk build --release; then
  step "layer 3: end-to-end (Playwright, headless Chromium, host emulator + gateway + simulator)"
  if cargo build --locked -p adapter-gateway -p adapter-simulator; then
    run_e2e e2e
    # The same suite with each stack's gateway on a database of its own on the cluster.
    if [ -n "$pg_url" ]; then
      step "layer 3, PostgreSQL: the end-to-end tests again, the gateway on PostgreSQL"
      export STACK_DATABASE_URL=$pg_url
      run_e2e e2e-postgres
      unset STACK_DATABASE_URL
    fi
  else
    failed+=("gateway/simulator build")
  fi
else
  failed+=("release build or size budget")
fi

echo
echo "=== summary ($(($(date +%s) - started)) s)"
[ -f target/size-report.txt ] && tail -2 target/size-report.txt
total_p=0
total_f=0
for layer in native postgres browser e2e e2e-postgres; do
  p=${passed_of[$layer]:-0}
  f=${failed_of[$layer]:-0}
  total_p=$((total_p + p))
  total_f=$((total_f + f))
  echo "$layer: $p passed, $f failed"
done
echo "all: $total_p passed, $total_f failed"
if [ ${#failed[@]} -gt 0 ]; then
  echo "FAILED: ${failed[*]}"
  exit 1
fi
for layer in native postgres browser e2e e2e-postgres; do
  if [ "${passed_of[$layer]:-0}" -eq 0 ]; then
    echo "FAILED: the $layer layer ran no test"
    exit 1
  fi
done
echo "OK"
