#!/bin/sh
# Runs the demo gateway in the foreground on http://127.0.0.1:8080.
set -e
root=$(cd "$(dirname "$0")/.." && pwd)
run=${MANIAC_RUN:-/tmp/mod_maniac-demo}
mkdir -p "$run"
echo "mod_maniac demo on http://127.0.0.1:8080/v1 (Ctrl-C stops it)"
echo "try: curl -s http://127.0.0.1:8080/v1/chat/completions -H 'content-type: application/json' -d '{\"model\":\"echo/demo\",\"messages\":[{\"role\":\"user\",\"content\":\"hello there\"}]}'"
exec /usr/sbin/apache2 -d "$root" -f "$root/httpd-conf/demo.conf" \
    -C "Define MANIAC_ROOT $root" -C "Define MANIAC_RUN $run" -DFOREGROUND
