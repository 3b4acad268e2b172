#!/usr/bin/env bash
# Builds the kintsugi-ffi library and generates its Kotlin, Swift and Python bindings into
# OUT_DIR (with the library beside them): `bash crates/kintsugi-ffi/bindings.sh OUT_DIR`.
set -euo pipefail
if [ $# -ne 1 ]; then
  echo "usage: bash crates/kintsugi-ffi/bindings.sh OUT_DIR" >&2
  exit 2
fi
out="$1"
cd "$(dirname "$0")/../.."
target="${CARGO_TARGET_DIR:-target}"
cargo build -p kintsugi-ffi --lib --bin uniffi-bindgen
library="$target/debug/libkintsugi_ffi.so"
mkdir -p "$out"
for language in kotlin swift python; do
  "$target/debug/uniffi-bindgen" generate --library "$library" --language "$language" \
    --out-dir "$out/$language" --no-format
done
cp "$library" "$out/python/"
cp "$library" "$out/kotlin/"
echo "bindings in $out (kotlin, swift, python)"
