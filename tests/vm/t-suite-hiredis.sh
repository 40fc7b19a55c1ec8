# A real suite (docs/real-suites.md): hiredis 0.14.1's own `make check`,
# unchanged, from Debian's source package. It starts a Redis server and runs
# 87 numbered checks against it over TCP, a unix socket and an inherited
# descriptor: names (localhost, a name that does not resolve), a closed
# port, timeouts, I/O errors, throughput (two, which print no verdict).
# Built on the host; run with `kestrel run --image` on an image with
# Debian's redis-server. It must end as on the host: 83 passed, and #54 and
# #73 failed, as they fail on a Debian 12 host too (they time out a DEBUG
# SLEEP, a command Redis 7 refuses by default).
# kestrel-test-timeout: 900
source "$(dirname "$0")/lib.sh"
source "$KESTREL_SOURCE_DIR/tests/suites/fetch.sh"

command -v make >/dev/null && command -v cc >/dev/null || skip "no make or cc"
src=$(fetch_source pool/main/h/hiredis/hiredis_0.14.1.orig.tar.gz \
  2663b2aed9fd430507e30fc5e63274ee40cdd1a296026e22eafd7d99b01c8913 "$KESTREL_BUILD_DIR/suites")
make -C "$src" hiredis-test >"$work/build.log" 2>&1 || { cat "$work/build.log"; fail "hiredis did not build"; }

cd "$src"
status=0
"$KESTREL" run --image "$KESTREL_SOURCE_DIR/tests/suites/redis.toml" --keep never -- make check \
  >"$work/check.log" 2>&1 || status=$?
expect_eq "make check's status (2 tests fail, as on the host)" 2 "$status"
passed=$(grep -c 'PASSED' "$work/check.log" || true)
failed=$(grep 'FAILED' "$work/check.log" | grep -o '^#[0-9]*' | tr '\n' ' ' || true)
expect_eq "tests passed" 83 "$passed"
expect_eq "tests failed" "#54 #73 " "$failed"
grep -q '^\*\*\* 2 TESTS FAILED \*\*\*' "$work/check.log" || fail "odd ending: $(tail -5 "$work/check.log")"
[ -z "$(deployments)" ] || fail "deployments left: $(deployments)"
echo PASS
