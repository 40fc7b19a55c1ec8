# Stopping `kestrel image build` as root, at its stages: SIGTERM while
# mmdebstrap resolves (apt-get update), SIGINT while it downloads, SIGKILL
# while it unpacks, SIGTERM while the image is made (tar, the recipe's files,
# mkfs). SIGTERM and SIGINT end every process of the build within its
# grace and remove its directory; after SIGKILL the build's own
# init ends them all the same (kestrel is gone), `kestrel gc --dry-run`
# names what is left and `kestrel gc` removes it. No mmdebstrap temporary
# tree is left anywhere.
# kestrel-test-timeout: 600
# kestrel-test-labels: any-kernel
# (It boots no VM: a recipe without `run` commands builds without one.)
source "$(dirname "$0")/lib.sh"

[ "$(id -u)" -eq 0 ] || skip "run as root: an unprivileged build runs mmdebstrap's unshare mode (t-images-unprivileged)"
use_own_cache
images=$KESTREL_CACHE_DIR/images
mkdir -p "$work/r" "$work/tmp"
printf 'size = "512M"\npackages = ["hello"]\n' >"$work/r/stop.toml"

# Processes of the build: whatever names the cache in its command line
# (mmdebstrap, apt-get), has its root or working directory there, or holds a
# file of it open (the build's init holds the recipe's lock).
build_procs() {
  local p root cwd cmd fds
  for p in /proc/[0-9]*; do
    [ "${p#/proc/}" = $$ ] && continue
    root=$(readlink "$p/root" 2>/dev/null) || continue
    cwd=$(readlink "$p/cwd" 2>/dev/null) || true
    cmd=$(tr '\0' ' ' <"$p/cmdline" 2>/dev/null) || true
    fds=$(ls -l "$p/fd" 2>/dev/null) || true
    case "$root $cwd $cmd $fds" in *"$KESTREL_CACHE_DIR"*) echo "${p#/proc/}: $cmd" ;; esac
  done
}
build_dirs() { find "$images" -maxdepth 1 -name '.build-*' 2>/dev/null || true; }

# Starts a build and returns once it reached stage $1 (its line printed).
start_build() {
  TMPDIR=$work/tmp "$KESTREL" image build "$work/r/stop.toml" >"$work/build.out" 2>&1 &
  build=$!
  for _ in $(seq 1200); do
    grep -q "^kestrel: image stop: $1: " "$work/build.out" && return
    kill -0 "$build" 2>/dev/null || fail "the build ended before $1: $(cat "$work/build.out")"
    sleep 0.05
  done
  fail "the build never reached $1: $(cat "$work/build.out")"
}

for stop in TERM:resolve INT:download TERM:image; do
  sig=${stop%%:*}
  start_build "${stop#*:}"
  kill -"$sig" "$build"
  status=0
  wait "$build" || status=$?
  expect_eq "status after SIG$sig" $((128 + $(kill -l "$sig"))) "$status"
  grep -q "stopped" "$work/build.out" || fail "no word of the stop: $(cat "$work/build.out")"
  left=$(build_procs)
  [ -z "$left" ] || fail "processes of the build outlived kestrel after SIG$sig: $left"
  expect_eq "build directories after SIG$sig" "" "$(build_dirs)"
done

start_build unpack
kill -KILL "$build"
wait "$build" || true
# The build's init gets SIGTERM when kestrel dies, and kills what is left
# when its 20 s of grace are up.
for _ in $(seq 120); do
  [ -z "$(build_procs)" ] && break
  sleep 0.25
done
left=$(build_procs)
[ -z "$left" ] || fail "processes of the build outlived a killed kestrel: $left"
dir=$(build_dirs)
[ -n "$dir" ] || fail "a killed build left no directory (expected one, for gc)"
"$KESTREL" gc --dry-run >"$work/gc.dry" 2>&1
grep -qx "would remove abandoned image build $dir" "$work/gc.dry" || fail "gc --dry-run does not name it: $(cat "$work/gc.dry")"
"$KESTREL" gc >"$work/gc" 2>&1
grep -q "removed 1 abandoned image build" "$work/gc" || fail "gc did not remove it: $(cat "$work/gc")"
expect_eq "build directories after gc" "" "$(build_dirs)"
expect_eq "temporary trees in TMPDIR" "" "$(ls -A "$work/tmp")"
echo PASS
