# `cmake --install` puts kestrel, its agent, the API (header, library), the
# CMake module and the docs in a prefix; the installed kestrel runs a VM with
# its own agent; every command has its --help; find_package(Kestrel) makes
# CTest run tests through it.
source "$(dirname "$0")/lib.sh"

prefix=$work/prefix
cmake --install "$KESTREL_BUILD_DIR" --prefix "$prefix" >"$work/install.log" 2>&1 ||
  { cat "$work/install.log"; fail "cmake --install failed"; }
libdir=$(sed -n 's/^CMAKE_INSTALL_LIBDIR:[A-Z]*=//p' "$KESTREL_BUILD_DIR/CMakeCache.txt")
for f in bin/kestrel libexec/kestrel/kestrel-agent share/cmake/Kestrel/KestrelConfig.cmake \
  include/kestrel/kestrel.hpp "${libdir:-lib}/libkestrel.so" "${libdir:-lib}/libkestrel.so.0" \
  share/cmake/Kestrel/KestrelTargets.cmake \
  share/doc/kestrel/README.md share/doc/kestrel/docs/config.md share/doc/kestrel/examples/rust/Cargo.toml; do
  [ -e "$prefix/$f" ] || fail "not installed: $f"
done

# The installed kestrel with nothing from the build tree: it must find the
# installed agent (<prefix>/libexec/kestrel), since no other is next to it.
# (The kernel setting and the cache stay: the tests' kernel, e.g. the lean one.)
installed() {
  env -i PATH="$prefix/bin:/usr/sbin:/usr/bin:/sbin:/bin" HOME="$HOME" \
    KESTREL_RUNTIME_DIR="$KESTREL_RUNTIME_DIR" XDG_CONFIG_HOME="$XDG_CONFIG_HOME" \
    ${KESTREL_CACHE_DIR:+KESTREL_CACHE_DIR="$KESTREL_CACHE_DIR"} $(kernel_env) "$@"
}
installed kestrel doctor >"$work/doctor" 2>&1 || { cat "$work/doctor"; fail "doctor found problems"; }
grep -q "^ok    guest    agent $prefix/libexec/kestrel/kestrel-agent," "$work/doctor" ||
  fail "the installed kestrel does not use the installed agent: $(cat "$work/doctor")"
out=$(installed kestrel run -q -- /bin/sh -c 'echo "$KESTREL_VM" = $(hostname)')
[[ $out =~ ^([a-z0-9-]+)\ =\ ([a-z0-9-]+)$ ]] && [ "${BASH_REMATCH[1]}" = "${BASH_REMATCH[2]}" ] ||
  fail "the installed kestrel did not run the program in a VM: $out"

# Complete --help texts are the manual: every command has one.
for c in run exec serial destroy ls gc kernel cargo go config doctor; do
  installed kestrel "$c" --help >"$work/help" 2>&1 || fail "kestrel $c --help failed: $(cat "$work/help")"
  [ "$(wc -l <"$work/help")" -ge 3 ] || fail "kestrel $c --help says too little: $(cat "$work/help")"
done

# The CMake module: find_package(Kestrel) instead of the flag.
cmake -S "$KESTREL_SOURCE_DIR/examples/cmake-gtest" -B "$work/build" -G Ninja -DWITH_KESTREL_MODULE=ON \
  -DCMAKE_PREFIX_PATH="$prefix" >"$work/configure.log" 2>&1 || { cat "$work/configure.log"; fail "configure failed"; }
KESTREL_QEMU=/bin/false cmake --build "$work/build" >"$work/build.log" 2>&1 ||
  { cat "$work/build.log"; fail "build (test discovery on the host) failed"; }
cd "$work/build"
ctest -N -V >"$work/commands" 2>&1
expect_eq "tests run through the installed kestrel" 3 \
  "$(grep -c "Test command: $prefix/bin/kestrel \"run\" \"--\"" "$work/commands" || true)"
ctest -R '^Vm\.' -V >"$work/out" 2>&1 || { cat "$work/out"; fail "ctest failed"; }
grep -q "in VM .* on kernel $(guest_kernel)\$" "$work/out" || fail "the test did not run in a VM: $(cat "$work/out")"
echo PASS
