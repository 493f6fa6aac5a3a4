#!/usr/bin/env bash
# Installs what building, running and testing the adapter need, and skips whatever is already
# there at the right version. Safe to run again and again; both README commands run it.
set -euo pipefail
source "$(dirname "$0")/env.sh"
cd "$ROOT"

say() { echo "bootstrap: $*"; }
as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }
apt_updated=
apt_install() {
  if [ -z "$apt_updated" ]; then
    as_root apt-get update -qq
    apt_updated=1
  fi
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq "$@" >/dev/null
}

command -v cargo >/dev/null || { echo "bootstrap: cargo is missing; install Rust with rustup first" >&2; exit 1; }

if rustup target list --installed | grep -qx wasm32-unknown-unknown; then
  say "wasm32-unknown-unknown target: present"
else
  say "installing the wasm32-unknown-unknown target"
  rustup target add wasm32-unknown-unknown
fi

if command -v node >/dev/null && command -v npm >/dev/null; then
  say "node $(node --version): present"
else
  say "installing Node.js and npm (Debian)"
  apt_install nodejs npm
fi

if command -v curl >/dev/null; then
  say "curl: present"
else
  say "installing curl (Debian)"
  apt_install curl
fi

# PostgreSQL: the store of gateway replicas, and the second engine every gateway test runs on
# (scripts/postgres.sh makes a throw-away cluster; nothing here starts a server).
if ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
  say "PostgreSQL $(ls /usr/lib/postgresql | sort -V | tail -1): present"
else
  say "installing PostgreSQL (Debian)"
  apt_install postgresql
fi

# HAProxy: the load balancer in front of gateway replicas, in the failover test and the replica
# benchmark (Debian installs it in /usr/sbin).
if [ -x /usr/sbin/haproxy ]; then
  say "haproxy: present"
else
  say "installing haproxy (Debian)"
  apt_install haproxy
fi

if [ -x "$CHROMIUM" ] && [ -x "$CHROMEDRIVER" ]; then
  say "chromium and chromedriver: present"
else
  say "installing chromium and chromium-driver (Debian)"
  apt_install chromium chromium-driver
fi

if [ "$(trunk --version 2>/dev/null)" = "trunk $TRUNK_VERSION" ]; then
  say "trunk $TRUNK_VERSION: present"
else
  say "installing trunk $TRUNK_VERSION (about 9 minutes on 2 cores)"
  cargo install trunk --version "$TRUNK_VERSION" --locked
fi

if [ "$(wasm-bindgen --version 2>/dev/null)" = "wasm-bindgen $WASM_BINDGEN_VERSION" ]; then
  say "wasm-bindgen-cli $WASM_BINDGEN_VERSION: present"
else
  # Not --locked: a crate in its lock file is missing from the registry.
  say "installing wasm-bindgen-cli $WASM_BINDGEN_VERSION (about 4 minutes on 2 cores)"
  cargo install wasm-bindgen-cli --version "$WASM_BINDGEN_VERSION"
fi

# Node packages: wasm-opt (binaryen) and terser for the release build (scripts/finish-bundle.mjs),
# Playwright and axe for the end-to-end tests.
lock_sum=$(sha256sum package-lock.json | cut -d' ' -f1)
if [ -f node_modules/.bootstrap-lock ] && [ "$(cat node_modules/.bootstrap-lock)" = "$lock_sum" ]; then
  say "node packages: up to date"
else
  say "installing node packages (npm ci)"
  npm ci --no-audit --no-fund --loglevel=error
  echo "$lock_sum" >node_modules/.bootstrap-lock
fi

# Trunk builds offline: every crate must be in cargo's cache first.
cargo fetch --locked -q
say "ready"
