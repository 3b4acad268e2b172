#!/usr/bin/env bash
# Generates the bindings, builds the server and runs the pytest suite over the generated
# Python bindings in a virtualenv of its own: `bash crates/kintsugi-ffi/tests/python/run.sh`.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$here/../../../.."
cd "$root"
target="${CARGO_TARGET_DIR:-target}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
bash crates/kintsugi-ffi/bindings.sh "$work/bindings"
cargo build -p kintsugi-cli
python3 -m venv "$work/venv"
"$work/venv/bin/pip" install --quiet --disable-pip-version-check -r "$here/requirements.txt"
status=0
KINTSUGI_BINDINGS_DIR="$work/bindings" KINTSUGI_BIN="$target/debug/kintsugi" \
  "$work/venv/bin/python" -m pytest -q -p no:cacheprovider "$here" || status=$?
if [ "$status" -eq 5 ]; then
  echo "python bindings: pytest collected no tests" >&2
  exit 1
fi
exit "$status"
