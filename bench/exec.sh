#!/usr/bin/env bash
# Round trip of `kestrel exec NAME true -f DIR` on a running VM: the whole
# command as a user runs it (process start, start-up sweep, connect, greet,
# run /bin/sh -c true in the guest, exit status back). Prints the median and
# the spread of ROUNDS (default 30) runs, against /bin/true on the host as
# the floor of process start. Target <= 50 ms under TCG; goal 20 ms.
# KESTREL_TRACE=1 shows where one exec spends its time.
ROUNDS=${ROUNDS:-30}
source "$(dirname "$0")/lib.sh"

tmp=$(mktemp -d /tmp/kestrel-bench-XXXXXX)
export KESTREL_RUNTIME_DIR=$tmp/rt
cleanup() {
  "$KESTREL" destroy --all 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT

# A VM that stays up: --keep always on a program that succeeds.
"$KESTREL" run -q --keep always -- /bin/true 2>"$tmp/run.err"
line=$(grep 'remains running' "$tmp/run.err") || { cat "$tmp/run.err" >&2; exit 1; }
[[ $line =~ VM\ ([a-z0-9-]+)\ remains\ running.*deployment\ dir\ (.+)$ ]] || { echo "$line" >&2; exit 1; }
name=${BASH_REMATCH[1]}
dir=${BASH_REMATCH[2]}

# Milliseconds of one command, measured around it with bash's own clock (no
# extra processes in the measurement).
ms() {
  local s e
  s=$EPOCHREALTIME
  "$@" >/dev/null
  e=$EPOCHREALTIME
  awk -v s="$s" -v e="$e" 'BEGIN { printf "%.1f\n", (e - s) * 1000 }'
}
for i in 1 2 3; do "$KESTREL" exec "$name" true -f "$dir"; done  # warm the guest's caches
for i in $(seq "$ROUNDS"); do
  ms "$KESTREL" exec "$name" true -f "$dir" >>"$tmp/exec.ms"
  ms /bin/true >>"$tmp/true.ms"
done
pct() { sort -g "$1" | awk -v p="$2" '{ v[NR] = $1 } END { i = int(NR * p); if (i < 1) i = 1; print v[i] }'; }
exec_median=$(median <"$tmp/exec.ms")
echo "kestrel exec NAME true -f DIR on a running VM, $ROUNDS rounds (TCG unless KVM is usable):"
printf '  median %6.1f ms   (p10 %s ms, p90 %s ms)\n' "$exec_median" "$(pct "$tmp/exec.ms" 0.1)" "$(pct "$tmp/exec.ms" 0.9)"
printf '  host /bin/true, same measurement: median %.1f ms\n' "$(median <"$tmp/true.ms")"
echo "  target <= 50 ms, goal 20 ms: $(awk -v m="$exec_median" 'BEGIN { print (m <= 20 ? "goal met" : m <= 50 ? "target met" : "target MISSED") }')"
