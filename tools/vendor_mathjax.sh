#!/usr/bin/env bash
# Re-create _vendor/mathjax from npm's mathjax@3 package (needs npm and the registry).
# The book loads MathJax from there (see `mathjax_path` in _config.yml), so math is
# typeset without a CDN. Only the CommonHTML TeX bundle, its fonts and the TeX
# extensions that `autoload` fetches on demand are kept (about 2 MB).
set -euo pipefail
cd "$(dirname "$0")/.."
version=3.2.2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && npm pack --silent "mathjax@$version" >/dev/null && tar xzf mathjax-*.tgz)
src="$tmp/package/es5"
rm -rf _vendor/mathjax
mkdir -p _vendor/mathjax/output/chtml/fonts _vendor/mathjax/input/tex
cp "$src/tex-chtml.js" _vendor/mathjax/
cp -r "$src/output/chtml/fonts/woff-v2" _vendor/mathjax/output/chtml/fonts/
cp -r "$src/input/tex/extensions" _vendor/mathjax/input/tex/
cp "$tmp/package/LICENSE" _vendor/mathjax/LICENSE
echo "mathjax@$version vendored into _vendor/mathjax"
