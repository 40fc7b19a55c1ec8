# A guest that looks like a machine (docs/guest.md, "What a guest has"), on
# the host's root: localhost as the host's /etc/hosts says, the VM's own name
# resolving, the host's resource limits, a machine-id of each VM's own (warm
# clones included); IPv4 and IPv6 loopback; under the
# default network a connect to an address outside the VM waits for its
# timeout instead of failing with ENETUNREACH; `--network user` reaches a
# server on the host at 10.0.2.2; a program the guest's OOM killer ends is
# reported as such, with the option that gives the VM more memory.
# (Image runs: tests/vm/t-images.sh checks the same names in an image.)
source "$(dirname "$0")/lib.sh"

cd "$work"
addresses() { awk '{ print $1 }' | sort -u; }

# 1. Names: localhost resolves as on the host; the VM's name resolves.
out=$("$KESTREL" run -q --keep never -- /bin/sh -c 'getent ahosts localhost; echo ---; echo $(getent hosts "$(hostname)") = $(hostname)')
expect_eq "localhost in the guest" "$(getent ahosts localhost | addresses)" "$(sed '/^---$/,$d' <<<"$out" | addresses)"
named=$(sed '1,/^---$/d' <<<"$out")
[[ $named =~ ^127\.0\.1\.1\ ([a-z0-9-]+)\ =\ ([a-z0-9-]+)$ && ${BASH_REMATCH[1]} == "${BASH_REMATCH[2]}" ]] ||
  fail "the VM's own name does not resolve: [$named]"

# Resource limits as on the host (kestrel's own, which the test's shell gave it).
expect_eq "limits in the guest" "$(ulimit -Sn) $(ulimit -Hn) $(ulimit -Sl) $(ulimit -Ss) $(ulimit -Sc)" \
  "$("$KESTREL" run -q --keep never -- bash -c 'echo $(ulimit -Sn) $(ulimit -Hn) $(ulimit -Sl) $(ulimit -Ss) $(ulimit -Sc)')"

# 2. Each VM its own machine-id, warm clones of one template included.
"$KESTREL" run -q --keep never -- /bin/true  # the template exists
for i in 1 2; do
  "$KESTREL" run --keep never -- cat /etc/machine-id >"$work/id.$i" 2>"$work/err.$i" &
done
wait
for i in 1 2; do
  grep -Eqx '[0-9a-f]{32}' "$work/id.$i" || fail "odd machine-id $i: [$(cat "$work/id.$i")] $(cat "$work/err.$i")"
done
[ "$(cat "$work/id.1")" != "$(cat "$work/id.2")" ] || fail "two VMs share the machine-id $(cat "$work/id.1")"
if [ -f /etc/machine-id ]; then
  [ "$(cat "$work/id.1")" != "$(cat /etc/machine-id)" ] || fail "the VM has the host's machine-id"
fi

# 3. The default network goes nowhere: a connect to an address outside the
# VM (TEST-NET-1: nothing leaves the VM, whose dummy0 drops it) ends by its
# 1 s timeout (124), not at once with "Network is unreachable".
status=0
"$KESTREL" run -q --keep never -- timeout 1 bash -c 'exec 3<>/dev/tcp/192.0.2.1/9' 2>"$work/connect" || status=$?
expect_eq "status of a connect that waits for its timeout" 124 "$status"
grep -q "unreachable" "$work/connect" && fail "the connect failed at once: $(cat "$work/connect")"
# A name /etc/hosts lacks fails at once (no DNS server), not after a
# resolver's 20 s of timeouts: getent's 2 is "not found".
status=0
"$KESTREL" run -q --keep never -- timeout 10 getent hosts no-such-name.test || status=$?
expect_eq "status of a lookup without a DNS server" 2 "$status"
# Loopback on IPv4 and IPv6.
out=$("$KESTREL" run -q --keep never -- python3 -c '
import socket
for family, host in ((socket.AF_INET, "127.0.0.1"), (socket.AF_INET6, "::1")):
    s = socket.socket(family); s.bind((host, 0)); s.listen(); c = socket.create_connection((host, s.getsockname()[1]), 5)
    print(host, "ok")')
expect_eq "loopback" "127.0.0.1 ok
::1 ok" "$out"

# 4. --network user: a server listening on the host's loopback answers at
# 10.0.2.2; DNS is QEMU's 10.0.2.3. Twice (a cold template, then a clone).
# The log exists before the loop reads it (the background shell opens it
# only when it runs: CI once read it first).
: >"$work/http.log"
python3 -u -m http.server --bind 127.0.0.1 0 >>"$work/http.log" 2>&1 &
server=$!
for _ in $(seq 100); do
  port=$(sed -n 's/.* port \([0-9]*\) .*/\1/p' "$work/http.log")
  [ -n "$port" ] && break
  sleep 0.1
done
[ -n "$port" ] || fail "the host's HTTP server did not start: $(cat "$work/http.log")"
for i in 1 2; do
  out=$("$KESTREL" run -q --network user --keep never -- bash -c "
    exec 3<>/dev/tcp/10.0.2.2/$port && printf 'GET / HTTP/1.0\r\n\r\n' >&3 && head -1 <&3 | tr -d '\r'
    grep '^nameserver' /etc/resolv.conf")
  expect_eq "run $i with --network user" "HTTP/1.0 200 OK
nameserver 10.0.2.3" "$out"
done
kill "$server"
status=0
"$KESTREL" run --network carrier-pigeon -- /bin/true 2>"$work/bad" || status=$?
expect_eq "status of an unknown network (a usage error)" 2 "$status"
grep -q "network" "$work/bad" || fail "no word on the network: $(cat "$work/bad")"

# 5. Out of memory: the program the OOM killer ends is named, with the VM's
# memory and the option that raises it.
status=0
"$KESTREL" run --mem 256 --keep never -- python3 -c '
chunks = []
while True:
    chunks.append(b"x" * (16 << 20))' >"$work/oom.out" 2>"$work/oom.err" || status=$?
expect_eq "status of a program the OOM killer ended" 137 "$status"
grep -Eq "the guest ran out of memory: its OOM killer ended process [0-9]+ \(python3[.0-9]*, [0-9]+ MiB resident\); the VM has 256 MiB, give it more with --mem MIB" \
  "$work/oom.err" || fail "no word on the OOM kill: $(cat "$work/oom.err")"
[ -z "$(deployments)" ] || fail "deployments left: $(deployments)"
echo PASS
