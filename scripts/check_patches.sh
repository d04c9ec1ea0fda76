#!/usr/bin/env bash
# Check that patches/<crate>/ is exactly the crates.io release plus patches/<crate>.patch:
# download each release (crates.io, the one network the build machines reach), apply the
# .patch to a copy, and compare it with the vendored tree (src/ and Cargo.toml).
#
#   bash scripts/check_patches.sh
set -euo pipefail
cd "$(dirname "$0")/.."
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
for crate in burn-flex; do
  curl -sSfL "https://static.crates.io/crates/$crate/$crate-0.21.0.crate" | tar xz -C "$tmp"
  (cd "$tmp/$crate-0.21.0" && patch -s -p1 < "$OLDPWD/patches/$crate.patch")
  diff -r "$tmp/$crate-0.21.0/src" "patches/$crate/src"
  diff "$tmp/$crate-0.21.0/Cargo.toml" "patches/$crate/Cargo.toml"
  echo "$crate: the 0.21.0 release + patches/$crate.patch ($(grep -c '^[-+][^-+]' "patches/$crate.patch") changed lines)"
done
