#!/usr/bin/env bash
# Trunk's post_build hook (Trunk.toml): builds the admins' settings page — settings.html, a
# bundle of its own that the agent widget does not carry — into the staging folder's settings/,
# with the same profile, then (release builds) finishes both bundles (scripts/finish-bundle.mjs:
# unused exports dropped, wasm-opt, JavaScript minified, integrity hashes) and measures them
# against their budgets.
#
# The settings page is a second Trunk build (Trunk builds one page per run); its own run of this
# hook does nothing (ADAPTER_NESTED_BUILD).
set -euo pipefail
[ -n "${ADAPTER_NESTED_BUILD:-}" ] && exit 0
cd "${TRUNK_SOURCE_DIR:-$(dirname "$0")/..}"
stage=${TRUNK_STAGING_DIR:?run by Trunk as a post_build hook}
args=()
[ "${TRUNK_PROFILE:-debug}" = release ] && args+=(--release)
public=${TRUNK_PUBLIC_URL:-/}
ADAPTER_NESTED_BUILD=1 trunk build settings.html "${args[@]}" \
  --dist "$stage/settings" --public-url "${public%/}/settings/"
if [ "${TRUNK_PROFILE:-debug}" = release ]; then
  node scripts/finish-bundle.mjs "$stage" "$stage/settings"
  bash scripts/size-report.sh "$stage"
fi
