#!/usr/bin/env bash
# Python -> Rust -> Python round trip of every h5ad encoding conceptlab supports.
#
# 1. Python anndata writes fixture files (scripts/python/h5ad_fixtures.py);
# 2. `conceptlab-cli convert` reads each one and writes it back (gzip and none);
# 3. Python anndata reads both and asserts they are identical
#    (scripts/python/check_roundtrip.py), and that only gzip is used.
#
# Usage: scripts/python_roundtrip.sh [path/to/conceptlab-cli]
set -euo pipefail
cd "$(dirname "$0")/.."
cli=${1:-target/debug/conceptlab-cli}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

python3 scripts/python/h5ad_fixtures.py "$work/python" --golden "$work/golden"
cp "$work/golden/python_written.h5ad" "$work/python/"
for compression in gzip none; do
  mkdir -p "$work/rust-$compression"
  for f in "$work"/python/*.h5ad; do
    "$cli" -q convert --compression "$compression" "$f" -o "$work/rust-$compression/$(basename "$f")"
  done
  echo "-- round trip, Rust writing with compression=$compression"
  python3 scripts/python/check_roundtrip.py "$work/python" "$work/rust-$compression"
done
