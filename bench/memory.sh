#!/usr/bin/env bash
# What a VM's memory size costs (docs/guest.md, "Memory"): for each size
# (MEMORY_SIZES, MiB, default "512 1024 2048"), side by side in one run on
# the same kernel: the median warm `kestrel run -- /bin/true`, the host
# memory of an idle clone (PSS), and the template's disk use (its RAM file
# is sparse: only the pages the guest touched take room). Each size gets a
# template of its own (memory is part of the template's key).
source "$(dirname "$0")/lib.sh"

sizes=${MEMORY_SIZES:-512 1024 2048}
tmp=$(mktemp -d /tmp/kestrel-bench-XXXXXX)
export KESTREL_RUNTIME_DIR=$tmp/rt
trap '"$KESTREL" destroy --all >/dev/null 2>&1 || true; rm -rf "$tmp"' EXIT

# A cache of its own (the kernels shared), so that its templates are these runs'.
kernels=$(dirname "$(kernel_dir)")
mkdir -p "$tmp/cache"
ln -s "$kernels" "$tmp/cache/kernels"
export KESTREL_CACHE_DIR=$tmp/cache

for mem in $sizes; do
  "$KESTREL" run -q --mem "$mem" -- /bin/true  # the template: not measured
done
for i in $(seq "$ROUNDS"); do
  for mem in $sizes; do
    start=$(now)
    "$KESTREL" run -q --mem "$mem" -- /bin/true
    elapsed "$start" >>"$tmp/warm.$mem"
    echo >>"$tmp/warm.$mem"
  done
done

echo "per VM memory size, median of $ROUNDS warm runs of /bin/true (TCG unless KVM is usable):"
printf '  %8s  %10s  %16s  %22s\n' "--mem" "warm run" "idle clone PSS" "template on disk"
for mem in $sizes; do
  warm=$(grep . "$tmp/warm.$mem" | median)
  "$KESTREL" run -q --mem "$mem" --keep always -- /bin/true 2>/dev/null
  dir=$(find "$KESTREL_RUNTIME_DIR" -mindepth 1 -maxdepth 1 -type d ! -name '.*' | head -1)
  pid=$(cat "$dir"/*/qemu.pid)
  sleep 2  # idle
  pss=$(awk '/^Pss:/ { printf "%.1f", $2 / 1024 }' "/proc/$pid/smaps_rollup")
  template=$(grep -l "\"mem_mib\": $mem," "$tmp"/cache/templates/*/template.json | head -1 | xargs -r dirname)
  if [ -n "$template" ]; then
    disk=$(du -sm "$template" | cut -f1)
    apparent=$(du -sm --apparent-size "$template" | cut -f1)
    room="$disk MiB ($apparent MiB apparent)"
  else
    room="?"
  fi
  "$KESTREL" destroy -f "$dir" >/dev/null
  printf '  %5s MiB  %8.3f s  %12.1f MiB  %22s\n' "$mem" "$warm" "$pss" "$room"
done
