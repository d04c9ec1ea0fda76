#!/usr/bin/env bash
# The library's public surface as rustdoc sees it: the items and modules `cargo doc --no-deps`
# documents (what a user of the `mgrpo` crate can name), by kind. docs/ARCHITECTURE.md ("The
# public surface") quotes the totals.
set -euo pipefail
cd "$(dirname "$0")/.."
target="${CARGO_TARGET_DIR:-target}"
rm -rf "$target/doc/mgrpo"
cargo doc --no-deps --lib --quiet
cd "$target/doc/mgrpo"
# rustdoc leaves a redirect page where a re-exported item is defined in a private module:
# those are not items of their own
pages() { find . -name "$@" -print0 | xargs -0 grep -L 'http-equiv="refresh"'; }
echo "modules: $(pages index.html | wc -l)"
pages '*.html' ! -name index.html ! -name all.html \
    | sed 's|.*/||; s|\..*||' | sort | uniq -c | awk '{printf "%s: %s\n", $2, $1; n += $1} END {print "items: " n}'
