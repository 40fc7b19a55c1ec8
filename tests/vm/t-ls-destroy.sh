# `kestrel ls [--json]` lists kept VMs with their directories; destroy by
# NAME and by -f DIR removes them (in parallel); gc --dry-run changes nothing.
source "$(dirname "$0")/lib.sh"
start_kept_vm --mem 256
a_name=$vm_name a_dir=$vm_dir
start_kept_vm --mem 256
b_name=$vm_name b_dir=$vm_dir

# Prints "name state dir pid-count" per deployment from `ls --json`.
ls_json() {
  "$KESTREL" ls --json | python3 -c '
import json, sys
for d in json.load(sys.stdin):
    assert "status" not in d, "ls --json repeats state as status"
    print(",".join(d["names"]), d["state"], d["dir"], len(d["pids"]), d["age_seconds"] >= 0)'
}
listing=$(ls_json) || fail "ls --json is not valid JSON: $("$KESTREL" ls --json)"
grep -qx "$a_name kept $a_dir 1 True" <<<"$listing" || fail "ls --json lacks $a_name: $listing"
grep -qx "$b_name kept $b_dir 1 True" <<<"$listing" || fail "ls --json lacks $b_name: $listing"
"$KESTREL" ls | grep -q "^$a_name .*kept .*$a_dir$" || fail "ls lacks $a_name: $("$KESTREL" ls)"

# Kept VMs within their time to live are not garbage.
expect_eq "gc --dry-run" "" "$("$KESTREL" gc --dry-run | grep -v "^would remove image " || true)"
"$KESTREL" gc
expect_eq "deployments after gc" 2 "$(deployments | wc -l)"

expect_eq "destroy NAME prints" "destroyed $a_dir (kept)" "$("$KESTREL" destroy "$a_name")"
listing=$(ls_json)
grep -q "$a_name" <<<"$listing" && fail "$a_name still listed after destroy: $listing"
grep -q "$b_name" <<<"$listing" || fail "$b_name vanished with $a_name"
[ ! -e "$a_dir" ] || fail "destroy left $a_dir"

"$KESTREL" destroy -f "$b_dir"
expect_eq "ls --json after destroying everything" "[]" "$("$KESTREL" ls --json)"
[ -z "$(our_qemus)" ] || fail "QEMU left: $(our_qemus)"

# Several at once: destroy --all tears them down in parallel.
for i in 1 2 3; do "$KESTREL" run -q --mem 256 --keep always -- /bin/true 2>/dev/null & done
wait
expect_eq "kept VMs" 3 "$(our_qemus | wc -l)"
start=$(now_ms)
"$KESTREL" destroy --all
echo "destroy --all of 3 VMs took $(($(now_ms) - start)) ms"
[ -z "$(our_qemus)" ] || fail "QEMU left after destroy --all: $(our_qemus)"
[ -z "$(deployments)" ] || fail "deployments left after destroy --all: $(deployments)"
echo PASS
