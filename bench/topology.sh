#!/usr/bin/env bash
# Topologies (docs/topologies.md), side by side in one run:
#   - `kestrel up` of examples/topology/db-app.toml from warm templates: db
#     (examples/postgres's image, PostgreSQL running) and app, linked, every
#     node set up and networked; the target is <= 2 s;
#   - the same pair's test: `run --topology --node app` of pg_test reaching
#     db:5432 by name (up, the test, down);
#   - `kestrel down` of the pair;
#   - a warm host-root run of /bin/true (the floor of any one VM).
source "$(dirname "$0")/lib.sh"

tmp=$(mktemp -d /tmp/kestrel-bench-XXXXXX)
export KESTREL_RUNTIME_DIR=$tmp/rt
trap '"$KESTREL" destroy --all >/dev/null 2>&1 || true; rm -rf "$tmp"' EXIT
cp -r "$here/../examples/postgres" "$here/../examples/topology" "$tmp/"
rm -rf "$tmp/postgres/build"
cmake -S "$tmp/postgres" -B "$tmp/postgres/build" -G Ninja >/dev/null
cmake --build "$tmp/postgres/build" >/dev/null
topo=$tmp/topology/db-app.toml
test_cmd=("$tmp/postgres/build/pg_test" --gtest_brief=1 --gtest_filter=Postgres.AnswersAQuery)
# Builds the image and the templates if needed; not measured.
"$KESTREL" down -f "$("$KESTREL" up "$topo")" >/dev/null
"$KESTREL" run -q -- /bin/true

for i in $(seq "$ROUNDS"); do
  start=$(now)
  dir=$("$KESTREL" up "$topo" 2>/dev/null)
  elapsed "$start" >>"$tmp/up.times"
  echo >>"$tmp/up.times"
  start=$(now)
  "$KESTREL" down -f "$dir" >/dev/null
  elapsed "$start" >>"$tmp/down.times"
  echo >>"$tmp/down.times"
  start=$(now)
  PGHOST=db "$KESTREL" run -q --topology "$topo" --node app -- "${test_cmd[@]}" >/dev/null 2>&1
  elapsed "$start" >>"$tmp/test.times"
  echo >>"$tmp/test.times"
  start=$(now)
  "$KESTREL" run -q -- /bin/true
  elapsed "$start" >>"$tmp/true.times"
  echo >>"$tmp/true.times"
done
up=$(grep . "$tmp/up.times" | median)
down=$(grep . "$tmp/down.times" | median)
test=$(grep . "$tmp/test.times" | median)
true_warm=$(grep . "$tmp/true.times" | median)

printf '%-52s %8s\n' "median of $ROUNDS (TCG, $(nproc) CPUs)" "seconds"
printf '%-52s %8s\n' "kestrel up: db (postgres image) + app, warm" "$up"
printf '%-52s %8s\n' "kestrel down of the pair" "$down"
printf '%-52s %8s\n' "run --topology: pg_test on app against db" "$test"
printf '%-52s %8s\n' "warm host-root run of /bin/true" "$true_warm"
printf '%-52s %8s\n' "up / one warm VM (x)" "$(ratio "$up" "$true_warm")"
echo "target: up <= 2.0 s"
