#!/usr/bin/env bash
# Two kestrel builds side by side, interleaved in one run: the median time of
# a warm `kestrel run -- /bin/true` with each, and their ratio. For "is this
# change no slower than before": build the old revision in a worktree, then
#   KESTREL_A=/path/to/old/build/src/kestrel ROUNDS=15 bash bench/warm-ab.sh
# (B defaults to this tree's build). Each build gets its own runtime dir; they
# share the cache, so each uses its own template (their initramfs differ).
source "$(dirname "$0")/lib.sh"

a=${KESTREL_A:?set KESTREL_A to the kestrel binary to compare against}
b=${KESTREL_B:-$KESTREL}
tmp=$(mktemp -d /tmp/kestrel-bench-XXXXXX)
trap 'KESTREL_RUNTIME_DIR=$tmp/a "$a" destroy --all >/dev/null 2>&1 || true
      KESTREL_RUNTIME_DIR=$tmp/b "$b" destroy --all >/dev/null 2>&1 || true; rm -rf "$tmp"' EXIT

# One warm run of binary $1 in runtime dir $2; prints seconds.
warm_run() {
  local start
  start=$(now)
  KESTREL_RUNTIME_DIR=$2 "$1" run -q -- /bin/true
  elapsed "$start"
  echo
}
warm_run "$a" "$tmp/a" >/dev/null  # builds each one's template; not measured
warm_run "$b" "$tmp/b" >/dev/null
for i in $(seq "$ROUNDS"); do
  # Alternate who goes first, so neither always runs on a cooler machine.
  if ((i % 2)); then
    warm_run "$a" "$tmp/a" >>"$tmp/a.times"
    warm_run "$b" "$tmp/b" >>"$tmp/b.times"
  else
    warm_run "$b" "$tmp/b" >>"$tmp/b.times"
    warm_run "$a" "$tmp/a" >>"$tmp/a.times"
  fi
done
ta=$(median <"$tmp/a.times")
tb=$(median <"$tmp/b.times")
echo "warm kestrel run -- /bin/true, median of $ROUNDS interleaved rounds:"
printf '  A %-60s %6.3f s\n' "$a" "$ta"
printf '  B %-60s %6.3f s   %s x A\n' "$b" "$tb" "$(ratio "$tb" "$ta")"
