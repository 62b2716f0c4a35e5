#!/usr/bin/env bash
# Proves vendor/deltalake-core is the crates.io release plus exactly
# vendor/deltalake-core-vacuum-protocol-check.patch (see vendor/README.md).
set -euo pipefail
cd "$(dirname "$0")/.."
version=1.1.3
registry=$(ls -d "${CARGO_HOME:-$HOME/.cargo}"/registry/src/*/deltalake-core-$version 2>/dev/null | head -n 1 || true)
if [ -z "$registry" ]; then
  # Patched away, so cargo never fetched the release: fetch it through a scratch crate.
  scratch=$(mktemp -d)
  mkdir "$scratch/src" && touch "$scratch/src/lib.rs"
  printf '[package]\nname = "scratch"\nversion = "0.0.0"\nedition = "2021"\n[dependencies]\ndeltalake-core = { version = "=%s", default-features = false }\n' \
    "$version" > "$scratch/Cargo.toml"
  (cd "$scratch" && cargo fetch --quiet)
  rm -rf "$scratch"
  registry=$(ls -d "${CARGO_HOME:-$HOME/.cargo}"/registry/src/*/deltalake-core-$version | head -n 1)
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp -r "$registry/src" "$work/src"
(cd "$work" && patch -s -p1 < "$OLDPWD/vendor/deltalake-core-vacuum-protocol-check.patch")
diff -r "$work/src" vendor/deltalake-core/src
for f in LICENSE.txt README.md; do cmp "$registry/$f" "vendor/deltalake-core/$f"; done
echo "vendor/deltalake-core = deltalake-core $version + the vacuumProtocolCheck patch"
