# --append: the user's kernel arguments reach the guest's command line after
# kestrel's own, warm and cold; other arguments make another template; a
# command line too long for Linux is refused before any VM starts.
source "$(dirname "$0")/lib.sh"
use_own_cache

templates() { find "$KESTREL_CACHE_DIR/templates" -mindepth 1 -maxdepth 1 -type d ! -name '.*' 2>/dev/null; }

# Warm (the first run builds the template, whose command line clones keep).
for run in build clone; do
  line=$("$KESTREL" run --keep never --append 'foo=bar kestrel.test=1' -- cat /proc/cmdline)
  [[ $line == *" kestrel.name=kestrel-template foo=bar kestrel.test=1" ]] || fail "$run: not last: [$line]"
done
expect_eq "templates" 1 "$(templates | wc -l)"

# Cold: under the VM's own name, still last.
line=$("$KESTREL" run --keep never --cold --append 'foo=bar' -- cat /proc/cmdline)
[[ $line == *" kestrel.name=cat-"??????" foo=bar" ]] || fail "cold: [$line]"

# The same from the environment and kestrel.toml; another value is another template.
line=$(KESTREL_KERNEL_ARGS='foo=baz' "$KESTREL" run --keep never -- cat /proc/cmdline)
[[ $line == *" foo=baz" ]] || fail "from the environment: [$line]"
expect_eq "templates after another value" 2 "$(templates | wc -l)"
mkdir "$work/p" && printf 'kernel_args = "foo=baz"\n' >"$work/p/kestrel.toml"
line=$(cd "$work/p" && "$KESTREL" run --keep never -- cat /proc/cmdline)
[[ $line == *" foo=baz" ]] || fail "from kestrel.toml: [$line]"
expect_eq "templates after the same value again" 2 "$(templates | wc -l)"

# A repeated parameter: the user's comes last, so the kernel takes it.
line=$("$KESTREL" run --keep never --append 'loglevel=7' -- cat /proc/sys/kernel/printk)
expect_eq "console loglevel with loglevel=7" 7 "$(echo "$line" | cut -f1)"

# Bad values: usage errors (2) before anything boots; a whole line over
# Linux's 2047 bytes is refused (125) naming both parts.
set +e
"$KESTREL" run --append $'a\nb' -- true 2>"$work/err"
expect_eq "status of a line break" 2 $?
grep -q 'line break' "$work/err" || fail "no reason: $(cat "$work/err")"
"$KESTREL" run --append "$(printf 'x%.0s' $(seq 2049))" -- true 2>"$work/err"
expect_eq "status of 2049 bytes" 2 $?
"$KESTREL" run --append "$(printf 'x%.0s' $(seq 2000))" -- true 2>"$work/err"
expect_eq "status of a line too long" 125 $?
set -e
grep -q "more than the 2047 Linux takes on x86.*kernel_args (--append) 2000" "$work/err" ||
  fail "no explanation: $(cat "$work/err")"
[ -z "$(deployments)" ] || fail "a refused run left a deployment: $(deployments)"
echo PASS
