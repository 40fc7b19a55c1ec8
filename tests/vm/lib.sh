# Shared prelude of the VM integration tests (one scenario per script).
# Each test gets its own runtime dir, so it sees only its own deployments and
# can prove that it leaked no VM. Exit 77 = skipped.
set -euo pipefail
set -E
# Only where errexit is on: a status checked under `set +e` is not a failure.
trap '[[ $- == *e* ]] && echo "FAILED at ${BASH_SOURCE[0]}:$LINENO: $BASH_COMMAND" >&2' ERR

: "${KESTREL_BUILD_DIR:?}"
: "${KESTREL_SOURCE_DIR:?}"
KESTREL=$KESTREL_BUILD_DIR/src/kestrel
export PATH=$KESTREL_BUILD_DIR/src:$PATH

test_name=$(basename "$0" .sh)
work=$(mktemp -d "/tmp/kt-$test_name-XXXXXX")
export KESTREL_RUNTIME_DIR=$work/rt
# No user config file of the person running the tests applies.
export XDG_CONFIG_HOME=$work/xdg

skip() { echo "SKIPPED: $*" >&2; exit 77; }

if ! "$KESTREL" kernel ls 2>/dev/null | grep -q .; then
  skip "no guest kernel cached (run: $KESTREL kernel fetch)"
fi

# QEMU processes that belong to this test (their command lines name our runtime dir).
our_qemus() { pgrep -f "qemu-system.*$KESTREL_RUNTIME_DIR" || true; }

finish() {
  local status=$?
  local leaked
  leaked=$(our_qemus)
  if [ -n "$leaked" ]; then
    echo "LEAK: QEMU processes left behind: $leaked" >&2
    kill -9 $leaked 2>/dev/null || true
    [ $status -eq 0 ] && status=1
  fi
  if [ $status -eq 0 ] || [ $status -eq 77 ]; then
    rm -rf "$work"
  else
    echo "kept for inspection: $work" >&2
  fi
  exit $status
}
trap finish EXIT

fail() { echo "FAIL: $*" >&2; exit 1; }

# expect_eq WHAT EXPECTED ACTUAL
expect_eq() {
  if [ "$2" != "$3" ]; then
    fail "$1: expected [$2], got [$3]"
  fi
}

# runs_at_once N CMD...: N `kestrel run --keep never -- CMD...` started at the
# same moment, output in $work/out.I and $work/err.I; sets `failed` to how many
# of them failed.
runs_at_once() {
  local n=$1 i job
  shift
  for i in $(seq "$n"); do
    "$KESTREL" run --keep never -- "$@" >"$work/out.$i" 2>"$work/err.$i" &
  done
  failed=0
  for job in $(jobs -p); do wait "$job" || failed=$((failed + 1)); done
}

# Deployment directories currently in our runtime dir.
# (.slots holds the slot limiter's locks, not a deployment.)
deployments() { find "$KESTREL_RUNTIME_DIR" -mindepth 1 -maxdepth 1 -type d ! -name .slots 2>/dev/null || true; }

# A cache of this test's own (templates, initramfs), sharing the kernels of
# the user's cache: for tests that damage or count cache entries.
use_own_cache() {
  local kernels
  kernels=$(dirname "$(dirname "$("$KESTREL" kernel ls | head -1 | cut -f2)")")
  mkdir -p "$work/cache"
  ln -s "$kernels" "$work/cache/kernels"
  export KESTREL_CACHE_DIR=$work/cache
}

# The "start" (warm or cold) of the first VM of a kept deployment.
vm_start() {
  python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["vms"][0]["start"])' "$1/deployment.json"
}

# The deployment dir named on a run's stderr start line.
start_dir() { sed -n 's/^kestrel: VM [a-z0-9-]*, deployment dir \(.*\)$/\1/p' "$1"; }
start_name() { sed -n 's/^kestrel: VM \([a-z0-9-]*\), deployment dir .*/\1/p' "$1"; }

# The guest kernel release `kestrel run` boots here: the `kernel` setting in
# effect (KESTREL_KERNEL, e.g. `lean` in `./dev test`'s lean passes, or
# kestrel.toml: `kestrel config` says) resolved as `kestrel kernel ls` marks
# its kernels: empty, the one marked `default` (Debian's newest); `lean`, the
# one marked `lean`; a release, itself; a path, what `kestrel doctor` reads.
guest_kernel() {
  local setting
  setting=$("$KESTREL" config | sed -n 's/^kernel = "\(.*\)"  *#.*$/\1/p')
  case $setting in
    '') "$KESTREL" kernel ls | awk -F'\t' '$4 == "default" { print $1 }' ;;
    lean) "$KESTREL" kernel ls | awk -F'\t' '$4 == "lean" { print $1 }' ;;
    */*) "$KESTREL" doctor --kernel "$setting" | sed -n 's/^ok    kernel   \([^ ]*\) .*/\1/p' ;;
    *) echo "$setting" ;;
  esac
}

# The cache directory of that kernel (.../kernels/RELEASE), for tests that
# give another cache (another user's, a clean system's) a copy of it; with
# kernel_env, the setting that selects it there.
guest_kernel_dir() {
  "$KESTREL" kernel ls | awk -F'\t' -v r="$(guest_kernel)" '$1 == r { sub("/[^/]*$", "", $2); print $2 }'
}
# For commands run with a clean environment (env -i, setpriv --reset-env):
# KESTREL_KERNEL=… when set, to add to their `env`.
kernel_env() { [ -z "${KESTREL_KERNEL:-}" ] || echo "KESTREL_KERNEL=$KESTREL_KERNEL"; }

# A copy of examples/NAME in $work (builds write next to the sources).
copy_example() {
  cp -r "$KESTREL_SOURCE_DIR/examples/$1" "$work/$1"
  rm -rf "$work/$1/target" "$work/$1/build"
  echo "$work/$1"
}

# Boots a VM that stays up (`run --keep always -- /bin/true`, extra run
# options in "$@"); sets vm_name and vm_dir.
start_kept_vm() {
  local err line
  err=$(mktemp "$work/kept-XXXXXX")
  "$KESTREL" run --keep always "$@" -- /bin/true 2>"$err" || fail "could not start a kept VM: $(cat "$err")"
  line=$(grep 'remains running' "$err") || fail "no 'remains running' line: $(cat "$err")"
  [[ $line =~ VM\ ([a-z0-9-]+)\ remains\ running.*deployment\ dir\ (.+)$ ]] || fail "odd line: $line"
  vm_name=${BASH_REMATCH[1]}
  vm_dir=${BASH_REMATCH[2]}
}

# Milliseconds since the epoch.
now_ms() { echo $(($(date +%s%N) / 1000000)); }

# make_fake_host VARIANT DIR: a fake host root for KESTREL_HOST_ROOT
# (src/vm/host_facts.hpp), so every kind of host is tested on every machine:
#   intel-kvm     Intel CPU with VT-x, kvm_intel, a usable /dev/kvm
#   amd-kvm       AMD CPU with AMD-V, kvm_amd (nested on), a usable /dev/kvm
#   pvm           a VM whose KVM is kvm_pvm, with a /dev/kvm
#   pvm-no-dev    the same without /dev/kvm (kvm_pvm loaded, no device)
#   kvm-not-ours  kvm_intel and a /dev/kvm only root may open (mode 600)
#   no-kvm        an Intel CPU with VT-x, no KVM module loaded, no /dev/kvm
# The fake /dev/kvm is a plain file: kestrel's choice reads the facts; QEMU
# still opens the real /dev/kvm, if it gets to.
make_fake_host() {
  local variant=$1 root=$2 vendor flags modules="" dev=666
  case $variant in
    intel-kvm) vendor=GenuineIntel flags="vmx ept" modules="kvm kvm_intel" ;;
    amd-kvm) vendor=AuthenticAMD flags="svm npt" modules="kvm kvm_amd" ;;
    pvm) vendor=AuthenticAMD flags=hypervisor modules="kvm kvm_pvm" ;;
    pvm-no-dev) vendor=AuthenticAMD flags=hypervisor modules="kvm kvm_pvm" dev="" ;;
    kvm-not-ours) vendor=GenuineIntel flags=vmx modules="kvm kvm_intel" dev=600 ;;
    no-kvm) vendor=GenuineIntel flags=vmx dev="" ;;
    *) fail "no fake host variant $variant" ;;
  esac
  mkdir -p "$root/proc/sys/kernel" "$root/sys/module" "$root/dev"
  chmod 755 "$root" "$root/proc" "$root/sys" "$root/dev"
  printf 'processor\t: 0\nvendor_id\t: %s\nflags\t\t: fpu pae %s lm\n\n' "$vendor" "$flags" >"$root/proc/cpuinfo"
  echo "6.1.0-fake-$variant" >"$root/proc/sys/kernel/osrelease"
  local m
  for m in $modules; do mkdir -p "$root/sys/module/$m/parameters"; done
  [ "$variant" != amd-kvm ] || echo Y >"$root/sys/module/kvm_amd/parameters/nested"
  if [ -n "$dev" ]; then
    : >"$root/dev/kvm"
    chmod "$dev" "$root/dev/kvm"
  fi
}

# The facts of the machine the tests run on, as kestrel reads them.
host_has_usable_kvm() {
  [ -r /dev/kvm ] && [ -w /dev/kvm ] && { [ -e /sys/module/kvm_intel ] || [ -e /sys/module/kvm_amd ]; }
}

# A command as nobody (uid 65534), when the tests run as root: permission
# checks that root would pass. As anyone else, the command itself.
as_unprivileged() {
  if [ "$(id -u)" -eq 0 ]; then
    setpriv --reuid=65534 --regid=65534 --clear-groups "$@"
  else
    "$@"
  fi
}
