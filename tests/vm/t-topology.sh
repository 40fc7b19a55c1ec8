# Topologies (docs/topologies.md): a chain a — r — b with r forwarding comes
# up with `kestrel up`; a pings b by name through r; `kestrel link a r down`
# breaks that and `up` mends it; nodes are reached by name with exec and
# serial; two copies at once do not interfere; a node that dies is shown
# dead while the others run; `down` leaves nothing; a killed `up` leaves an
# orphan that gc removes whole; bad files fail before any VM starts.
# kestrel-test-timeout: 600
source "$(dirname "$0")/lib.sh"

topo=$KESTREL_SOURCE_DIR/examples/topology/chain.toml
ping_b() { "$KESTREL" exec a 'busybox ping -c 1 -W 2 b' -f "$1" >"$work/ping" 2>&1; }

# Bad files: PATH:LINE errors, nothing started.
bad=$work/bad.toml
printf '[[node]]\nname = "a"\n\n[[link]]\nnodes = ["a", "x"]\n' >"$bad"
status=0
"$KESTREL" up "$bad" >/dev/null 2>"$work/err" || status=$?
expect_eq "status of a bad topology" 125 "$status"
grep -q "^kestrel: error: $bad:4: link a-x names unknown node \"x\" (nodes: a)$" "$work/err" || fail "unknown node: $(cat "$work/err")"
printf '[[node]]\nname = "a"\n[[node]]\nname = "a"\n' >"$bad"
"$KESTREL" up "$bad" >/dev/null 2>"$work/err" && fail "a duplicate node was accepted"
grep -q "^kestrel: error: $bad:3: .*\"a\".* twice" "$work/err" || fail "duplicate node: $(cat "$work/err")"
printf '[[node]]\nname = "a"\n[[node]]\nname = "b"\n[[node]]\nname = "c"\n[[link]]\nnodes = ["a", "b"]\naddresses = ["10.9.0.1/24", "10.9.0.2/24"]\n[[link]]\nnodes = ["b", "c"]\naddresses = ["10.9.0.3/24", "10.9.0.1/24"]\n' >"$bad"
"$KESTREL" up "$bad" >/dev/null 2>"$work/err" && fail "an address clash was accepted"
grep -q "^kestrel: error: $bad:1[0-9]: " "$work/err" || fail "address clash: $(cat "$work/err")"
[ -z "$(deployments)" ] || fail "a bad file left deployments: $(deployments)"
[ -z "$(our_qemus)" ] || fail "a bad file started QEMU"

# Two copies at once (the first builds the templates, the other waits for them).
"$KESTREL" up "$topo" >"$work/dir1" 2>"$work/up1" &
up1=$!
"$KESTREL" up "$topo" >"$work/dir2" 2>"$work/up2" || fail "second up failed: $(cat "$work/up2")"
wait $up1 || fail "first up failed: $(cat "$work/up1")"
dir1=$(cat "$work/dir1")
dir2=$(cat "$work/dir2")
[ -d "$dir1" ] && [ -d "$dir2" ] && [ "$dir1" != "$dir2" ] || fail "odd deployment dirs: [$dir1] [$dir2]"
grep -q "^kestrel: topology chain-[0-9a-f]\{6\} up in [0-9.]* s, deployment dir $dir1\$" "$work/up1" ||
  fail "no up line: $(cat "$work/up1")"
grep -q "exec a 'CMD' -f $dir1" "$work/up1" || fail "no per-node commands: $(cat "$work/up1")"

for d in "$dir1" "$dir2"; do
  expect_eq "hostname of node a" a "$("$KESTREL" exec a hostname -f "$d")"
  expect_eq "b's name in a" "192.168.7.2 b" "$("$KESTREL" exec a 'getent hosts b' -f "$d" | tr -s ' \t' '  ')"
  ping_b "$d" || fail "a cannot ping b in $d: $(cat "$work/ping")"
done

# Node names repeat across copies: destroy by name refuses to guess.
"$KESTREL" destroy a 2>"$work/err" && fail "destroy of an ambiguous name went ahead"
grep -q "2 deployments have a VM named a (.*): name one with -f DIR" "$work/err" || fail "odd message: $(cat "$work/err")"
[ -d "$dir1" ] && [ -d "$dir2" ] || fail "an ambiguous destroy removed something"

# The link control: down makes the ping fail, up makes it pass again; the
# other copy is not affected.
"$KESTREL" link a r down -f "$dir1"
ping_b "$dir1" && fail "a still reaches b with a—r down"
ping_b "$dir2" || fail "the other copy lost its link: $(cat "$work/ping")"
"$KESTREL" link r a up -f "$dir1"
ok=no
for _ in 1 2 3 4 5; do
  if ping_b "$dir1"; then ok=yes; break; fi
  sleep 1
done
expect_eq "a pings b once a—r is up again" yes "$ok"
"$KESTREL" link a b down -f "$dir1" 2>"$work/err" && fail "a link that does not exist was accepted"
grep -q "no link between a and b" "$work/err" || fail "odd message: $(cat "$work/err")"

# The console of a node by name.
out=$(printf 'hostname\n' | "$KESTREL" serial r -f "$dir1" | tr -d '\r')
grep -qx r <<<"$out" || fail "r's console did not answer: $out"

# ls lists one deployment with its nodes; a node that dies shows dead while
# the others keep running.
"$KESTREL" ls >"$work/ls"
grep -q "^a,r,b .* $dir1\$" "$work/ls" || fail "ls lacks the topology: $(cat "$work/ls")"
grep -q "^  b  *running .* $dir1/b\$" "$work/ls" || fail "ls lacks node b: $(cat "$work/ls")"
kill -9 "$(cat "$dir2/b/qemu.pid")"
sleep 0.5
"$KESTREL" ls >"$work/ls"
grep -q "^  b  *dead .* $dir2/b\$" "$work/ls" || fail "a dead node is not shown dead: $(cat "$work/ls")"
expect_eq "a still runs" a "$("$KESTREL" exec a hostname -f "$dir2")"
"$KESTREL" exec b true -f "$dir2" 2>"$work/err" && fail "exec into a dead node succeeded"
grep -q "VM b in $dir2 is not running.*console log: $dir2/b/console.log" "$work/err" || fail "odd message: $(cat "$work/err")"

# down leaves no QEMU, no socket, no directory.
"$KESTREL" down -f "$dir1" -f "$dir2" >"$work/down"
[ ! -e "$dir1" ] && [ ! -e "$dir2" ] || fail "down left directories"
[ -z "$(our_qemus)" ] || fail "down left QEMUs: $(our_qemus)"
[ -z "$(find "$KESTREL_RUNTIME_DIR" -type s)" ] || fail "down left sockets: $(find "$KESTREL_RUNTIME_DIR" -type s)"

# run --topology: the test runs on a node, reaches the others, and the
# topology goes with it; a failing test keeps it, naming every node.
"$KESTREL" run --topology "$topo" --node a -- /bin/sh -c 'busybox ping -c 1 -W 2 b >/dev/null && echo "on $(hostname)"' \
  >"$work/out" 2>"$work/err" || fail "run --topology failed: $(cat "$work/err")"
expect_eq "run --topology output" "on a" "$(cat "$work/out")"
[ -z "$(deployments)" ] || fail "run --topology left deployments: $(deployments)"
status=0
"$KESTREL" run --topology "$topo" --node b -- /bin/sh -c 'exit 3' 2>"$work/err" || status=$?
expect_eq "status of a failing test on a topology" 3 "$status"
grep -q "test failed (exit status 3); topology chain-[0-9a-f]* remains running (nodes: a, r, b), deployment dir " "$work/err" ||
  fail "no kept message: $(cat "$work/err")"
kept=$(sed -n 's/.*remains running (nodes: a, r, b), deployment dir \(.*\)$/\1/p' "$work/err")
expect_eq "hostname of the kept topology's r" r "$("$KESTREL" exec r hostname -f "$kept")"
"$KESTREL" down -f "$kept" >/dev/null

# A killed `kestrel up` leaves an orphan; gc removes it whole.
"$KESTREL" up "$topo" >/dev/null 2>"$work/up3" &
up3=$!
for _ in $(seq 200); do
  d=$(deployments)
  [ -n "$d" ] && grep -q '"pid": [1-9]' "$d/deployment.json" 2>/dev/null && break
  sleep 0.05
done
kill -9 $up3
wait $up3 2>/dev/null || true
[ -n "$(deployments)" ] || fail "no deployment to orphan"
"$KESTREL" gc >"$work/gc"
grep -q "destroyed .* (orphaned)" "$work/gc" || fail "gc did not remove the orphan: $(cat "$work/gc")"
[ -z "$(deployments)" ] || fail "gc left deployments: $(deployments)"
[ -z "$(our_qemus)" ] || fail "gc left QEMUs"
echo PASS
