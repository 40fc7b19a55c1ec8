# Topologies with images (examples/topology/db-app.toml): `db` runs
# examples/postgres's image with PostgreSQL started in its template, `app`
# the host's root. A test on app reaches db:5432 by name and queries it
# (run --topology), and a topology that is up answers exec and serial by node.
# kestrel-test-timeout: 900
source "$(dirname "$0")/lib.sh"

pkg-config --exists libpq || skip "no libpq-dev"
pg=$(copy_example postgres)
topo=$(copy_example topology)/db-app.toml
cmake -S "$pg" -B "$pg/build" -G Ninja >"$work/configure.log" 2>&1 || { cat "$work/configure.log"; fail "configure failed"; }
cmake --build "$pg/build" >"$work/build.log" 2>&1 || { cat "$work/build.log"; fail "build failed"; }

# The test on app, the server on db (the image is built on first use).
PGHOST=db "$KESTREL" run --topology "$topo" --node app -- "$pg/build/pg_test" >"$work/out" 2>"$work/err" ||
  fail "pg_test on app failed: $(cat "$work/out" "$work/err")"
grep -q "PASSED.*2 tests" "$work/out" || fail "odd output: $(cat "$work/out")"
[ -z "$(deployments)" ] || fail "run --topology left deployments: $(deployments)"

# Up by hand: names, the console, and the query from app by name with the
# image's own client on db's side.
dir=$("$KESTREL" up "$topo" 2>"$work/up") || fail "up failed: $(cat "$work/up")"
expect_eq "hostname of app" app "$("$KESTREL" exec app hostname -f "$dir")"
"$KESTREL" exec app 'getent hosts db' -f "$dir" | grep -q '^10\.42\.1\.2 *db$' || fail "app does not resolve db"
expect_eq "a query from db's own client" 42 \
  "$("$KESTREL" exec db "psql -h 127.0.0.1 -U postgres -Atc 'SELECT 40 + 2'" -f "$dir")"
"$KESTREL" exec app --env PGHOST=db -f "$dir" -- "$pg/build/pg_test" --gtest_filter=Postgres.AnswersAQuery >"$work/out" 2>&1 ||
  fail "pg_test by exec on app failed: $(cat "$work/out")"
out=$(printf 'hostname; test -S /var/run/postgresql/.s.PGSQL.5432 && echo db-is-up\n' | "$KESTREL" serial db -f "$dir" | tr -d '\r')
grep -qx db <<<"$out" && grep -qx db-is-up <<<"$out" || fail "db's console did not answer: $out"
"$KESTREL" down -f "$dir" >/dev/null
[ -z "$(deployments)" ] || fail "down left deployments"
echo PASS
