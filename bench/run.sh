#!/usr/bin/env bash
# Runs every benchmark (or those named) and prints their reports.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
benches=("$@")
[ ${#benches[@]} -gt 0 ] || benches=(cold-boot warm-start exec images topology)
for b in "${benches[@]}"; do
  echo "== $b"
  bash "$here/$b.sh"
done
