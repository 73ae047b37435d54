#!/usr/bin/env bash
# Checks the release binary the image copies (called by `just image-check`): it runs, it knows the
# subcommands the manifests use, and it links only the libraries the distroless cc run stage has.
set -euo pipefail
bin="${1:?usage: image-check.sh <path to release arflow binary>}"
"$bin" --version
"$bin" serve --help >/dev/null
"$bin" migrate --help >/dev/null
# gcr.io/distroless/cc-debian12 ships glibc (libc, libm, libpthread, libdl, librt, ld-linux) and libgcc_s.
allowed='^(libc\.so\.6|libm\.so\.6|libpthread\.so\.0|libdl\.so\.2|librt\.so\.1|libgcc_s\.so\.1|ld-linux-x86-64\.so\.2|ld-linux-aarch64\.so\.1)$'
needed="$(readelf -d "$bin" | sed -n 's/.*Shared library: \[\(.*\)\]/\1/p')"
extra="$(grep -Ev "$allowed" <<<"$needed" || true)"
if [ -n "$extra" ]; then
  echo "image-check: $bin needs libraries the run stage does not have:" >&2
  echo "$extra" >&2
  exit 1
fi
echo "image-check: ok ($(tr '\n' ' ' <<<"$needed"), $(du -h "$bin" | cut -f1) binary)"
