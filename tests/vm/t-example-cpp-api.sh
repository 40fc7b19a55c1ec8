# kestrel-test-timeout: 900
# examples/cpp-api, a GoogleTest harness on the C++ API (docs/api.md), built
# against kestrel as installed: (a) by `cmake --install` into a prefix, (b)
# from the Debian package's files (cpack, then dpkg-deb -x: the package's
# CMake files are relocatable). Both times its tests pass: a two-node
# topology built in code (hostname, exit status, timeout, name resolution, a
# TCP round trip, a link taken down and up) and a single `kestrel::run`; the test
# binary loads libkestrel.so from that install, which finds the agent beside
# itself (<libdir>/../libexec/kestrel).
source "$(dirname "$0")/lib.sh"

command -v dpkg-shlibdeps >/dev/null || skip "dpkg-dev is not installed (cpack -G DEB needs dpkg-shlibdeps)"
command -v python3 >/dev/null || skip "python3 is not installed (the example's echo server runs it in a VM)"
libdir=$(sed -n 's/^CMAKE_INSTALL_LIBDIR:[A-Z]*=//p' "$KESTREL_BUILD_DIR/CMakeCache.txt")
libdir=${libdir:-lib}

# build_and_test PREFIX NAME: configures examples/cpp-api against PREFIX in
# $work/NAME, builds it, checks that the test binary loads PREFIX's library
# and runs its tests.
build_and_test() {
  local prefix=$1 build=$work/$2
  cmake -S "$KESTREL_SOURCE_DIR/examples/cpp-api" -B "$build" -G Ninja -DCMAKE_PREFIX_PATH="$prefix" \
    >"$build.configure.log" 2>&1 || { cat "$build.configure.log"; fail "$2: configure failed"; }
  grep -q "^Kestrel_DIR:PATH=$prefix/share/cmake/Kestrel\$" "$build/CMakeCache.txt" ||
    fail "$2: find_package(Kestrel) did not find $prefix: $(grep '^Kestrel_DIR' "$build/CMakeCache.txt")"
  cmake --build "$build" >"$build.build.log" 2>&1 || { cat "$build.build.log"; fail "$2: build failed"; }
  # (Into files first: grep -q stops reading early, and pipefail would see
  # the writer's SIGPIPE.)
  readelf -d "$build/api_test" >"$build.dynamic"
  grep -q "RUNPATH.*\[$prefix/$libdir\]" "$build.dynamic" ||
    fail "$2: api_test's RUNPATH does not name $prefix/$libdir: $(grep PATH "$build.dynamic")"
  ldd "$build/api_test" >"$build.ldd"
  grep -q "libkestrel\.so\.0 => $prefix/$libdir/libkestrel\.so\.0 " "$build.ldd" ||
    fail "$2: api_test does not load $prefix/$libdir/libkestrel.so.0: $(cat "$build.ldd")"
  # The tests start VMs themselves: our runtime dir and config (lib.sh) and
  # the caller's other settings reach them; the agent is the install's.
  (cd "$build" && env -u KESTREL_AGENT ctest --output-on-failure -j 2 >"$build.ctest.log" 2>&1) ||
    { cat "$build.ctest.log"; fail "$2: the example's tests failed"; }
  grep -q "^100% tests passed, 0 tests failed out of 2\$" "$build.ctest.log" ||
    fail "$2: not the example's 2 tests: $(cat "$build.ctest.log")"
  [ -z "$(deployments)" ] || fail "$2: the tests left deployments: $(deployments)"
}

# (a) cmake --install
prefix=$work/prefix
cmake --install "$KESTREL_BUILD_DIR" --prefix "$prefix" >"$work/install.log" 2>&1 ||
  { cat "$work/install.log"; fail "cmake --install failed"; }
# Only the API is exported: nothing of kestrel's internals or of the
# libraries linked into libkestrel.so (C++ standard library instantiations
# may be).
nm -D --defined-only -C "$prefix/$libdir/libkestrel.so" | cut -d ' ' -f 3- >"$work/exports"
grep -q '^kestrel::Topology::up(kestrel::TopologyDefinition const&)$' "$work/exports" ||
  fail "libkestrel.so lacks the API: $(cat "$work/exports")"
leaked=$(grep -E '^(kestrel|fmt|toml|nlohmann|CLI)::' "$work/exports" | grep -vE '^kestrel::(run\(|Topology::)' || true)
[ -z "$leaked" ] || fail "libkestrel.so exports more than the API: $leaked"
build_and_test "$prefix" build-prefix

# (b) the Debian package's files
(cd "$work" && cpack -G DEB --config "$KESTREL_BUILD_DIR/CPackConfig.cmake" -B "$work/pkg") >"$work/cpack.log" 2>&1 ||
  { cat "$work/cpack.log"; fail "cpack -G DEB failed"; }
deb=$(echo "$work"/pkg/kestrel_*.deb)
[ -f "$deb" ] || fail "no .deb in $work/pkg"
dpkg-deb -c "$deb" >"$work/contents"
for f in include/kestrel/kestrel.hpp "$libdir/libkestrel.so.0" "$libdir/libkestrel.so" \
  share/cmake/Kestrel/KestrelConfig.cmake share/cmake/Kestrel/KestrelTargets.cmake libexec/kestrel/kestrel-agent; do
  grep -q " \./usr/$f\( -> .*\)\{0,1\}\$" "$work/contents" || fail "not in the package: /usr/$f"
done
dpkg-deb -I "$deb" shlibs >"$work/shlibs" || fail "the package has no shlibs file: $(dpkg-deb -I "$deb")"
grep -q '^libkestrel 0 kestrel' "$work/shlibs" || fail "no shlibs entry for libkestrel.so.0: $(cat "$work/shlibs")"
dpkg-deb -x "$deb" "$work/debroot"
build_and_test "$work/debroot/usr" build-deb
echo PASS
