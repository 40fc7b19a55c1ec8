#!/usr/bin/env bash
# Images (docs/images.md), side by side in one run:
#   - a warm image run of examples/postgres's test: kestrel start -> test done,
#     PostgreSQL already running in the template the clone restores;
#   - a warm host-root run of /bin/true (the floor of any run);
#   - a cold boot of the image that starts PostgreSQL itself (--cold: boot,
#     mount the disk, start the service, wait until it answers), then the test.
# Target: the warm postgres run <= 1.0 s; goal <= 0.5 s. Then a second
# `image build` of the unchanged recipe (target: a cache hit < 1 s).
source "$(dirname "$0")/lib.sh"

tmp=$(mktemp -d /tmp/kestrel-bench-XXXXXX)
export KESTREL_RUNTIME_DIR=$tmp/rt
trap '"$KESTREL" destroy --all >/dev/null 2>&1 || true; rm -rf "$tmp"' EXIT
proj=$tmp/postgres
cp -r "$here/../examples/postgres" "$proj"
rm -rf "$proj/build"
cmake -S "$proj" -B "$proj/build" -G Ninja >/dev/null
cmake --build "$proj/build" >/dev/null
# One test, as CTest runs it (gtest_discover_tests: one VM per test case):
# connect to 127.0.0.1:5432 and run a query. And the whole binary.
test_cmd=("$proj/build/pg_test" --gtest_brief=1 --gtest_filter=Postgres.AnswersAQuery)
all_cmd=("$proj/build/pg_test" --gtest_brief=1)
cd "$proj"
# Builds the image and its template if needed, and the host-root template; not measured.
"$KESTREL" image build images/pg.toml
"$KESTREL" run -q -- "${test_cmd[@]}" >/dev/null
"$KESTREL" run -q -- /bin/true

for i in $(seq "$ROUNDS"); do
  start=$(now)
  "$KESTREL" run -q -- "${test_cmd[@]}" >/dev/null
  elapsed "$start" >>"$tmp/pg-warm.times"
  echo >>"$tmp/pg-warm.times"
  start=$(now)
  "$KESTREL" run -q -- "${all_cmd[@]}" >/dev/null
  elapsed "$start" >>"$tmp/pg-all.times"
  echo >>"$tmp/pg-all.times"
  start=$(now)
  "$KESTREL" run -q --image "" -- /bin/true
  elapsed "$start" >>"$tmp/true.times"
  echo >>"$tmp/true.times"
  start=$(now)
  "$KESTREL" run -q --cold -- "${test_cmd[@]}" >/dev/null
  elapsed "$start" >>"$tmp/pg-cold.times"
  echo >>"$tmp/pg-cold.times"
done
pg_warm=$(grep . "$tmp/pg-warm.times" | median)
pg_all=$(grep . "$tmp/pg-all.times" | median)
true_warm=$(grep . "$tmp/true.times" | median)
pg_cold=$(grep . "$tmp/pg-cold.times" | median)
start=$(now)
"$KESTREL" image build images/pg.toml 2>/dev/null
hit=$(elapsed "$start")

printf '%-52s %8s\n' "median of $ROUNDS (TCG, $(nproc) CPUs)" "seconds"
printf '%-52s %8s\n' "warm image run of the postgres test (one test case)" "$pg_warm"
printf '%-52s %8s\n' "warm image run of pg_test (both test cases)" "$pg_all"
printf '%-52s %8s\n' "warm host-root run of /bin/true" "$true_warm"
printf '%-52s %8s\n' "cold boot of the image starting postgres, then test" "$pg_cold"
printf '%-52s %8s\n' "image build of the unchanged recipe (cache hit)" "$hit"
echo "postgres warm / cold:      $(ratio "$pg_warm" "$pg_cold")"
echo "postgres warm - /bin/true: $(awk -v a="$pg_warm" -v b="$true_warm" 'BEGIN { printf "%.3f s", a - b }') (the test itself)"
verdict() { awk -v w="$pg_warm" -v t="$1" 'BEGIN { exit !(w <= t) }' && echo met || echo "NOT met"; }
echo "target (warm postgres run <= 1.0 s): $(verdict 1.0); goal (<= 0.5 s): $(verdict 0.5)"
