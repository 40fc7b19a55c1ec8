# Sourced by the real-suite tests (docs/real-suites.md): fetch_source URL
# SHA256 DIR fetches a Debian source tarball once into DIR (kept in the build
# tree), checks its SHA-256 and unpacks it there; prints the unpacked
# directory. Debian's archive is the one registry these tests reach; a
# mirror can be named in KESTREL_DEBIAN_MIRROR. A fetch that fails skips the
# test, saying why (it is the network's fault, not kestrel's).
fetch_source() {
  local path=$1 sum=$2 dir=$3
  local mirror=${KESTREL_DEBIAN_MIRROR:-http://deb.debian.org/debian}
  local file=$dir/$(basename "$path")
  mkdir -p "$dir"
  if ! echo "$sum  $file" | sha256sum -c --quiet >/dev/null 2>&1; then
    curl -fsS --max-time 120 -o "$file.part" "$mirror/$path" || skip "cannot fetch $mirror/$path"
    echo "$sum  $file.part" | sha256sum -c --quiet >/dev/null 2>&1 || fail "$mirror/$path does not have the SHA-256 $sum"
    mv "$file.part" "$file"
  fi
  local list top
  list=$(tar -tf "$file")
  top=${list%%/*}
  [ -n "$top" ] && [ "$top" != . ] || fail "$file has no top directory"
  rm -rf "${dir:?}/$top"
  tar -xf "$file" -C "$dir" || fail "cannot unpack $file"
  echo "$dir/$top"
}
