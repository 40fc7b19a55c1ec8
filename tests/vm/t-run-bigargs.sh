# Long command lines (docs/protocol.md, "Large EXEC"): more than 65536
# arguments or environment variables, and more than 1 MiB of them, reach the
# program as they would on the host, up to what the host's own stack limit
# lets execve take (the guest has the host's limits).
source "$(dirname "$0")/lib.sh"

# 70,000 arguments: more than one frame's list holds.
out=$("$KESTREL" run -q --keep never -- /bin/sh -c 'echo $#' x $(seq 70000))
expect_eq "argument count" 70000 "$out"

# 70,000 environment variables (about 1.3 MB) as the program sees them: the
# guest's env(1) prints them, the host counts and sums. (They are set with
# python's execve: env(1) and bash's export take quadratic time, and so
# does dash importing them, which under TCG takes many seconds.)
with_env() {
  python3 -c 'import os, sys
env = dict(os.environ)
for line in open(sys.argv[1]):
    name, _, value = line.rstrip("\n").partition("=")
    env[name] = value
os.execve(sys.argv[2], sys.argv[2:], env)' "$@"
}
awk 'BEGIN { for (i = 1; i <= 70000; i++) printf "KV%d=value-%d\n", i, i }' >"$work/vars"
with_env "$work/vars" "$KESTREL" run -q --keep never -- /usr/bin/env >"$work/env-out"
expect_eq "variables that reached the program" 70000 "$(grep -c ^KV "$work/env-out")"
expect_eq "checksum of the variables" "$(sort "$work/vars" | cksum)" "$(grep ^KV "$work/env-out" | sort | cksum)"

# 1.5 MiB of environment in 12 variables of 128 KiB less a little (one
# string's limit in execve is 128 KiB).
big=$(head -c 131000 /dev/zero | tr '\0' b)
mapfile -t vars < <(for i in $(seq 12); do echo "KBIG$i=$i$big"; done)
count_and_sum='env | grep ^KBIG | sort | cksum'
expected=$(env -i "${vars[@]}" /bin/sh -c "$count_and_sum")
out=$(env "${vars[@]}" "$KESTREL" run -q --keep never -- /bin/sh -c "$count_and_sum")
expect_eq "1.5 MiB of variables" "$expected" "$out"

# A command line that only a host with an unlimited stack takes (its
# ARG_MAX is a quarter of the stack limit, capped at 6 MiB): the guest has
# the host's limits (docs/guest.md, "What a guest has"), so it takes it too.
# (A guest that cannot: the E2BIG message, agent_server_test.cpp.)
if (ulimit -s unlimited) 2>/dev/null; then
  set +e
  (
    ulimit -s unlimited
    timeout 120 "$KESTREL" run -q --keep never -- /bin/sh -c 'echo $# $(ulimit -s)' x $(seq 400000)
  ) >"$work/out" 2>"$work/err"
  status=$?
  set -e
  expect_eq "status of a command line only an unlimited stack takes" 0 "$status"
  expect_eq "arguments and stack limit in the guest" "400000 unlimited" "$(cat "$work/out")"
else
  echo "note: the unlimited-stack case needs 'ulimit -s unlimited' on the host; not checked" >&2
fi
echo PASS
