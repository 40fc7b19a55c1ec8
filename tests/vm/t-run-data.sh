# Byte-exact output: 8 MiB of random data through `cat` in the VM; stdin too.
source "$(dirname "$0")/lib.sh"

head -c $((8 * 1024 * 1024)) /dev/urandom >"$work/F"
"$KESTREL" run -q -- /bin/cat "$work/F" >"$work/out"
expect_eq "sha256 of cat F" "$(sha256sum <"$work/F" | cut -d' ' -f1)" "$(sha256sum <"$work/out" | cut -d' ' -f1)"

# Standard input is forwarded when it is not a terminal.
"$KESTREL" run -q -- /bin/cat <"$work/F" >"$work/out2"
expect_eq "sha256 of stdin through cat" "$(sha256sum <"$work/F" | cut -d' ' -f1)" "$(sha256sum <"$work/out2" | cut -d' ' -f1)"
echo PASS
