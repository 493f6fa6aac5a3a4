#!/usr/bin/env bash
# Size report and budget of the shipped widget: raw and gzip size of every wasm, js, css and
# html file, and their total. Fails when the gzip total is over the budget.
#
#   scripts/size-report.sh [DIR]     DIR defaults to $TRUNK_STAGING_DIR (Trunk's post_build hook)
#                                     or dist/.
#
# The budget only goes down. Raising it needs a measured reason in the commit message.
set -euo pipefail

BUDGET_GZIP_BYTES=270000

dir=${1:-${TRUNK_STAGING_DIR:-dist}}
# As a Trunk hook, only release builds ship; a debug build is not measured.
if [ -z "${1:-}" ] && [ -n "${TRUNK_PROFILE:-}" ] && [ "$TRUNK_PROFILE" != "release" ]; then
  exit 0
fi
[ -d "$dir" ] || { echo "size-report: no folder $dir" >&2; exit 2; }

report=$(mktemp)
trap 'rm -f "$report"' EXIT
total_raw=0
total_gz=0
printf '%-48s %10s %10s\n' "shipped file" "raw" "gzip" >"$report"
while IFS= read -r -d '' file; do
  raw=$(wc -c <"$file")
  gz=$(gzip -9 -c "$file" | wc -c)
  total_raw=$((total_raw + raw))
  total_gz=$((total_gz + gz))
  printf '%-48s %10d %10d\n' "${file#"$dir"/}" "$raw" "$gz" >>"$report"
done < <(find "$dir" -type f \( -name '*.wasm' -o -name '*.js' -o -name '*.css' -o -name '*.html' \) -print0 | sort -z)
printf '%-48s %10d %10d\n' "total" "$total_raw" "$total_gz" >>"$report"
printf '%-48s %10s %10d\n' "budget (gzip)" "" "$BUDGET_GZIP_BYTES" >>"$report"
cat "$report"
mkdir -p target
cp "$report" target/size-report.txt

if [ "$total_gz" -gt "$BUDGET_GZIP_BYTES" ]; then
  echo "size-report: gzip total $total_gz bytes is over the budget of $BUDGET_GZIP_BYTES bytes" >&2
  exit 1
fi
echo "size-report: gzip total $total_gz bytes, within the budget of $BUDGET_GZIP_BYTES bytes"
