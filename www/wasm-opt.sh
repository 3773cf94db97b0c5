#!/bin/sh
# Trunk post-build hook: shrink the release wasm module with binaryen's wasm-opt when the machine
# has it (Debian: `apt-get install binaryen`; `make tools` installs it where it can). Without it the
# site still works, with a larger module. Measured in docs/BENCHMARKS.md: -O1 drops the name section
# and dead code, 38.4 MB -> 23.8 MB (gzip 5.5 -> 4.2 MB).
set -eu
[ "${TRUNK_PROFILE:-debug}" = release ] || exit 0
if ! command -v wasm-opt >/dev/null 2>&1; then
  echo "wasm-opt not found: the site ships the unoptimized module (install binaryen to shrink it)" >&2
  exit 0
fi
for wasm in "$TRUNK_STAGING_DIR"/*_bg.wasm; do
  # Debian's binaryen (108) needs the features rustc enables by default spelled out.
  wasm-opt -O1 --enable-bulk-memory --enable-sign-ext --enable-mutable-globals \
    --enable-nontrapping-float-to-int --enable-reference-types --enable-multivalue \
    "$wasm" -o "$wasm.opt"
  mv "$wasm.opt" "$wasm"
done
