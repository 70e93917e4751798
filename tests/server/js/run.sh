#!/usr/bin/env bash
# ctest driver of the client tests of `kvlens serve` (see CMakeLists.txt):
#   run.sh setup    installs the pinned npm packages (npm ci from package-lock.json; again only when the lockfile
#                   changed), the fixture both tests need
#   run.sh openai   openai.test.mjs: the official openai SDK against the real server
#   run.sh web      web.test.mjs: the web page in headless Chromium (KVL_CHROMIUM, default /usr/bin/chromium)
# Exit 77 (skipped) when node (v20 or later), npm or Chromium is missing; CI installs them (scripts/install-deps.sh).
set -u
here=$(cd "$(dirname "$0")" && pwd)
what=${1:-}
src=${KVL_SRC:-$(cd "$here/../../.." && pwd)}
command -v node >/dev/null || { echo "SKIP: no node"; exit 77; }
major=$(node -p 'process.versions.node.split(".")[0]')
[ "$major" -ge 20 ] || { echo "SKIP: node $(node --version) is older than v20"; exit 77; }
stamp=$here/node_modules/.kvl-lock-sha256
want=$(sha256sum "$here/package-lock.json" | cut -d' ' -f1)
case $what in
setup)
    if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then echo "node_modules up to date"; exit 0; fi
    command -v npm >/dev/null || { echo "SKIP: no npm"; exit 77; }
    (cd "$here" && timeout 540 npm ci --no-audit --no-fund) || { echo "FAIL: npm ci in $here"; exit 1; }
    echo "$want" >"$stamp"
    ;;
openai | web)
    if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
        command -v npm >/dev/null || { echo "SKIP: no npm to install the packages"; exit 77; }
        echo "FAIL: node_modules missing or stale (run.sh setup, the server_js_setup test, installs them)"; exit 1
    fi
    [ -f "$src/models/kvlens-think-2-q8_0.gguf" ] || { echo "SKIP: no shipped model"; exit 77; }
    if [ "$what" = web ]; then
        chrome=${KVL_CHROMIUM:-/usr/bin/chromium}
        [ -x "$chrome" ] || { echo "SKIP: no $chrome (Debian package chromium)"; exit 77; }
    fi
    cd "$here" && exec timeout -k 10 840 node --test --test-reporter=spec "$here/$what.test.mjs"
    ;;
*) echo "usage: run.sh setup|openai|web" >&2; exit 2 ;;
esac
