#!/usr/bin/env bash
# Vendors the dashboard's front-end libraries into static/vendor/ (no CDN at run time).
#
# uPlot comes from the npm registry as the published tarball; its sha512 integrity is
# pinned here and checked before anything is unpacked. Re-run with `make vendor`.
set -euo pipefail

UPLOT_VERSION="1.6.32"
UPLOT_INTEGRITY="sha512-KIMVnG68zvu5XXUbC4LQEPnhwOxBuLyW1AHtpm6IKTXImkbLgkMy+jabjLgSLMasNuGGzQm/ep3tOkyTxpiQIw=="

root="$(cd "$(dirname "$0")/.." && pwd)"
dest="$root/static/vendor/uplot"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

if command -v npm >/dev/null 2>&1; then
  (cd "$work" && npm pack --silent "uplot@${UPLOT_VERSION}" >/dev/null)
else
  curl -fsSL -o "$work/uplot-${UPLOT_VERSION}.tgz" \
    "https://registry.npmjs.org/uplot/-/uplot-${UPLOT_VERSION}.tgz"
fi
tarball="$work/uplot-${UPLOT_VERSION}.tgz"

actual="sha512-$(openssl dgst -sha512 -binary "$tarball" | base64 -w0)"
if [ "$actual" != "$UPLOT_INTEGRITY" ]; then
  echo "uplot-${UPLOT_VERSION}.tgz: integrity mismatch" >&2
  echo "  expected $UPLOT_INTEGRITY" >&2
  echo "  got      $actual" >&2
  exit 1
fi

tar -xzf "$tarball" -C "$work"
mkdir -p "$dest"
cp "$work/package/dist/uPlot.esm.js" "$dest/uPlot.esm.js"
cp "$work/package/dist/uPlot.min.css" "$dest/uPlot.min.css"
cp "$work/package/LICENSE" "$dest/LICENSE"
cat > "$dest/VERSION" <<META
uplot ${UPLOT_VERSION}
source: npm registry, uplot-${UPLOT_VERSION}.tgz
integrity: ${UPLOT_INTEGRITY}
files: dist/uPlot.esm.js, dist/uPlot.min.css, LICENSE (MIT)
META
echo "vendored uPlot ${UPLOT_VERSION} into ${dest#"$root"/}"
