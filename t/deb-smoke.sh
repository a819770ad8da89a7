#!/bin/sh
# Builds the Debian package, installs it into the system apache2, enables it
# the admin's way (a2enmod maniac, a2enconf maniac-site), starts apache2 with
# apache2ctl, asks echo/... a question and reads the metrics, then stops
# apache2 and puts everything back (in a trap: also on failure).
#   sh t/deb-smoke.sh               build, install, smoke, restore (root)
#   sh t/deb-smoke.sh --build-only  only build/deb/libapache2-mod-maniac_*.deb
set -eu
repo=$(cd "$(dirname "$0")/.." && pwd)
out="$repo/build/deb"
pkg=libapache2-mod-maniac
port=80

build() {
    # dpkg-buildpackage writes next to the source tree: build in a copy
    work=$(mktemp -d)
    mkdir -p "$work/src" "$out"
    (cd "$repo" && tar --exclude=./build --exclude=./.git --exclude=node_modules -cf - .) \
        | tar -C "$work/src" -xf -
    (cd "$work/src" && dpkg-buildpackage -us -uc -b >"$work/build.log" 2>&1) || {
        tail -50 "$work/build.log"; rm -rf "$work"; echo "deb-smoke: package build failed" >&2; exit 1; }
    rm -f "$out"/*.deb
    cp "$work"/*.deb "$out"/
    rm -rf "$work"
    deb=$(ls "$out"/${pkg}_*.deb | head -1)
    echo "deb-smoke: built $deb"
}

build
[ "${1:-}" = "--build-only" ] && exit 0

if [ "$(id -u)" != 0 ]; then
    echo "deb-smoke: needs root (installs into the system apache2)" >&2
    exit 1
fi
if dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
    echo "deb-smoke: $pkg is already installed here: not touching it" >&2
    exit 1
fi
if [ -s /var/run/apache2/apache2.pid ] && kill -0 "$(cat /var/run/apache2/apache2.pid)" 2>/dev/null; then
    echo "deb-smoke: the system apache2 is running: not touching it" >&2
    exit 1
fi

proxy_was_on=0
[ -e /etc/apache2/mods-enabled/proxy.load ] && proxy_was_on=1
started=0
restore() {
    rc=$?
    set +e
    if [ "$started" = 1 ]; then
        apache2ctl stop >/dev/null 2>&1
        # apache2ctl stop returns before the parent is gone
        i=0
        while [ -s /var/run/apache2/apache2.pid ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
    fi
    a2disconf -q maniac-site >/dev/null 2>&1
    a2dismod -q maniac >/dev/null 2>&1
    [ "$proxy_was_on" = 0 ] && a2dismod -q proxy >/dev/null 2>&1
    dpkg -P "$pkg" >/dev/null 2>&1
    [ $rc = 0 ] && echo "deb-smoke: ok" || echo "deb-smoke: FAILED ($rc)" >&2
    exit $rc
}
trap restore EXIT
trap 'exit 130' INT TERM

dpkg -i "$deb" >/dev/null
test -f /usr/lib/apache2/modules/mod_maniac.so
test ! -e /etc/apache2/mods-enabled/maniac.load    # nothing enabled by the package
a2enmod -q maniac
a2enconf -q maniac-site
apache2ctl configtest
started=1
apache2ctl start

i=0
until curl -s -o /dev/null "http://127.0.0.1:$port/"; do
    i=$((i + 1)); [ $i -gt 100 ] && { echo "deb-smoke: apache2 does not answer on :$port" >&2; exit 1; }
    sleep 0.1
done
body=$(curl -s -H 'Content-Type: application/json' \
    -d '{"model":"echo/smoke","messages":[{"role":"user","content":"hello from the package"}]}' \
    "http://127.0.0.1:$port/v1/chat/completions")
echo "$body" | grep -q '"content":"hello from the package"' || {
    echo "deb-smoke: unexpected answer: $body" >&2; exit 1; }
echo "deb-smoke: echo answered"
want='maniac_requests_total{gen_ai_provider_name="echo",gen_ai_request_model="smoke",outcome="success"} 1'
i=0
until curl -s "http://127.0.0.1:$port/maniac-metrics" | grep -qxF "$want"; do
    i=$((i + 1)); [ $i -gt 50 ] && { echo "deb-smoke: metrics do not show: $want" >&2; exit 1; }
    sleep 0.1
done
echo "deb-smoke: metrics counted it"
