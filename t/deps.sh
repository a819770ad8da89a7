#!/bin/sh
# Installs what `make test` / `make run` / `make bench` need on Debian 12, as
# root, skipping what is already there.  Never installs Debian's npm: the
# nodejs package already bundles npm, and the two conflict.
set -e
PKGS="apache2 apache2-dev libapr1-dev libaprutil1-dev libjansson-dev libcmocka-dev \
libssl-dev libaprutil1-dbd-sqlite3 libaprutil1-dbd-pgsql sqlite3 postgresql \
openssl curl valgrind cppcheck make gcc pkg-config ca-certificates \
clang libclang-rt-14-dev libhiredis-dev libmemcached-dev redis-server memcached \
build-essential debhelper dpkg-dev fakeroot"
missing=""
for p in $PKGS; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if ! command -v node >/dev/null 2>&1; then
    missing="$missing nodejs"
fi
if [ -n "$missing" ]; then
    if [ "$(id -u)" != 0 ]; then
        echo "deps: missing packages:$missing (run as root or install them)" >&2
        exit 1
    fi
    echo "deps: installing$missing"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi
here=$(cd "$(dirname "$0")" && pwd)
if [ -f "$here/integration/package.json" ] && { [ ! -d "$here/integration/node_modules/openai" ] \
        || [ ! -d "$here/integration/node_modules/@seriousme/openapi-schema-validator" ] \
        || [ ! -d "$here/integration/node_modules/@ai-sdk/openai-compatible" ]; }; then
    echo "deps: npm ci (t/integration)"
    (cd "$here/integration" && npm ci --no-audit --no-fund --loglevel=error)
fi
