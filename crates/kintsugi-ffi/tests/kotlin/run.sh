#!/usr/bin/env bash
# Compiles the generated Kotlin bindings with DeviceTest.kt and runs it on the JVM against a
# real server: `bash crates/kintsugi-ffi/tests/kotlin/run.sh` (KINTSUGI_BIN: the server binary,
# built when unset). Installs what it needs when missing: kotlinc (npm's kotlin-compiler, with
# kotlinx-coroutines) into target/kotlin-tools, and JNA (Debian's libjna-java).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
cd "$here/../../../.."
target="${CARGO_TARGET_DIR:-target}"
tools="$target/kotlin-tools"
kotlinc="$tools/node_modules/kotlin-compiler/bin/kotlinc"
if [ ! -x "$kotlinc" ]; then
  npm install --no-audit --no-fund --prefix "$tools" kotlin-compiler@2.4.20 >&2
fi
jna=/usr/share/java/jna.jar
if [ ! -f "$jna" ]; then
  sudo_if_needed=""
  [ "$(id -u)" -eq 0 ] || sudo_if_needed="sudo"
  $sudo_if_needed apt-get install -y -q libjna-java >&2
fi
coroutines="$tools/node_modules/kotlin-compiler/lib/kotlinx-coroutines-core-jvm.jar"
if [ -z "${KINTSUGI_BIN:-}" ]; then
  cargo build -p kintsugi-cli >&2
  KINTSUGI_BIN="$target/debug/kintsugi"
fi
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
bash crates/kintsugi-ffi/bindings.sh "$work/bindings" >&2
"$kotlinc" -nowarn -cp "$jna:$coroutines" -d "$work/test.jar" \
  "$work"/bindings/kotlin/uniffi/kintsugi_ffi/*.kt "$here/DeviceTest.kt" 2>&1 | grep -v '^warning' >&2 || true
[ -f "$work/test.jar" ] || { echo "kotlin: the bindings and the test did not compile" >&2; exit 1; }
KINTSUGI_BIN="$(realpath "$KINTSUGI_BIN")" java -Djna.library.path="$work/bindings/kotlin" \
  -cp "$work/test.jar:$jna:$coroutines:$(dirname "$kotlinc")/../lib/kotlin-stdlib.jar" DeviceTestKt
