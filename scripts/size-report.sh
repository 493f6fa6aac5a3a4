#!/usr/bin/env bash
# Size report and budgets of what ships, per bundle: the agent widget (DIR, less settings/) and
# the admins' settings page (DIR/settings/). Raw and gzip size of every wasm, js, css and html
# file, each bundle's total, and its budget. Fails when a bundle's gzip total is over its budget.
#
#   scripts/size-report.sh [DIR]     DIR defaults to $TRUNK_STAGING_DIR (Trunk's post_build hook)
#                                     or dist/.
#
# A budget only goes down. Raising one needs a measured reason in the commit message.
set -euo pipefail

# The agent widget, loaded in every agent's sidebar all day. The target is 180,000 B gzip;
# measured 237,290 B once its JSON was read field by field (adapter_core::json_fields) instead of
# by serde's derived decoders (from 249,867 B), so the budget is that measure with 0.7 % of room
# until the rest of the saving is found (what is left is mostly the views: Leptos' rendering and
# reactive code instantiated per view; no single item over 6 % of the wasm). Then 219,446 B once
# framework code stopped being instantiated per use (one effect type, one memo type for the
# shown/hidden views, boxed click handlers, no keyed list, a boxed request future, signals instead
# of closures), with talc as the allocator, a smaller panic hook and more wasm-opt passes; then
# 216,462 B with the pages, styles and JavaScript minified; then 199,350 B once the widget read
# only the fields it uses of the gateway's answers, had fewer signal types, and showed and hid
# its conditional views instead of mounting them (components::shown_while); then 198,222 B with
# the call panel one view for the page's life; then 196,939 B with the storage fallback's keys in
# a list instead of the widget's only HashMap; then 185,240 B once it read and wrote its JSON with
# adapter_core::json_text instead of serde_json's parser and serialiser; then 181,407 B with
# fractions written by json_text too and the exports nothing calls dropped before wasm-opt
# (scripts/finish-bundle.mjs); then 178,502 B, under the target, with send_wrapper patched not
# to look up the current thread on single-threaded wasm (vendor/send_wrapper).
AGENT_BUDGET_GZIP_BYTES=178800
# The settings page, opened by admins only: measured 188,317 B, then 183,513 B, then 180,772 B
# minified, then 180,031 B, then 168,877 B (the same changes as the widget's).
SETTINGS_BUDGET_GZIP_BYTES=169100

dir=${1:-${TRUNK_STAGING_DIR:-dist}}
# As a Trunk hook, only release builds ship; a debug build is not measured.
if [ -z "${1:-}" ] && [ -n "${TRUNK_PROFILE:-}" ] && [ "$TRUNK_PROFILE" != "release" ]; then
  exit 0
fi
[ -d "$dir" ] || { echo "size-report: no folder $dir" >&2; exit 2; }

report=$(mktemp)
trap 'rm -f "$report"' EXIT
failed=0
verdicts=()

# measure NAME FOLDER BUDGET [find filters…]
measure() {
  local name=$1 folder=$2 budget=$3
  shift 3
  local total_raw=0 total_gz=0 raw gz file
  printf '%-48s %10s %10s\n' "$name: shipped file" "raw" "gzip" >>"$report"
  while IFS= read -r -d '' file; do
    raw=$(wc -c <"$file")
    gz=$(gzip -9 -c "$file" | wc -c)
    total_raw=$((total_raw + raw))
    total_gz=$((total_gz + gz))
    printf '%-48s %10d %10d\n' "${file#"$dir"/}" "$raw" "$gz" >>"$report"
  done < <(find "$folder" "$@" -type f \( -name '*.wasm' -o -name '*.js' -o -name '*.css' -o -name '*.html' \) -print0 | sort -z)
  printf '%-48s %10d %10d\n' "$name: total" "$total_raw" "$total_gz" >>"$report"
  printf '%-48s %10s %10d\n' "$name: budget (gzip)" "" "$budget" >>"$report"
  if [ "$total_gz" -gt "$budget" ]; then
    verdicts+=("size-report: $name: gzip total $total_gz bytes is over the budget of $budget bytes")
    failed=1
  else
    verdicts+=("size-report: $name: gzip total $total_gz bytes, within the budget of $budget bytes")
  fi
  echo >>"$report"
}

measure "agent widget" "$dir" "$AGENT_BUDGET_GZIP_BYTES" -path "$dir/settings" -prune -o
if [ -d "$dir/settings" ]; then
  measure "settings page" "$dir/settings" "$SETTINGS_BUDGET_GZIP_BYTES"
else
  verdicts+=("size-report: settings page: no folder $dir/settings (built by scripts/post-build.sh)")
  failed=1
fi
# The last lines are the verdicts, one per bundle (scripts/test.sh prints them).
printf '%s\n' "${verdicts[@]}" >>"$report"
cat "$report"
mkdir -p target
cp "$report" target/size-report.txt
exit "$failed"
