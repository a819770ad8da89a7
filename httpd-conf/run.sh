#!/bin/sh
# Runs the demo gateway in the foreground on http://127.0.0.1:8080.
# Ctrl-C (or SIGTERM/SIGHUP to this script) stops it with graceful-stop: an
# ungraceful stop races in httpd's event MPM and can crash a child on the way
# out.  Streams in flight get MANIAC_STOP_SECONDS (default 10) to finish.
set -e
root=$(cd "$(dirname "$0")/.." && pwd)
run=${MANIAC_RUN:-/tmp/mod_maniac-demo}
grace=${MANIAC_STOP_SECONDS:-10}
mkdir -p "$run"
echo "mod_maniac demo on http://127.0.0.1:8080/v1 (Ctrl-C stops it)"
echo "try: curl -s http://127.0.0.1:8080/v1/chat/completions -H 'content-type: application/json' -d '{\"model\":\"echo/demo\",\"messages\":[{\"role\":\"user\",\"content\":\"hello there\"}]}'"
# its own session: the terminal's SIGINT reaches this script, not httpd
setsid /usr/sbin/apache2 -d "$root" -f "$root/httpd-conf/demo.conf" \
    -C "Define MANIAC_ROOT $root" -C "Define MANIAC_RUN $run" \
    -C "GracefulShutdownTimeout $grace" -DFOREGROUND &
pid=$!

stop() {
    trap '' INT TERM HUP
    echo "stopping (graceful-stop, up to ${grace}s)" >&2
    kill -WINCH "$pid" 2>/dev/null || true
    # httpd ends what is left after GracefulShutdownTimeout; this is the backstop
    (
        i=0
        while kill -0 "$pid" 2>/dev/null; do
            [ "$i" -eq $((grace + 5)) ] && kill -TERM "$pid" 2>/dev/null
            [ "$i" -eq $((grace + 10)) ] && kill -KILL "$pid" 2>/dev/null
            sleep 1; i=$((i + 1))
        done
    ) &
    status=0
    wait "$pid" || status=$?
    exit "$status"
}
trap stop INT TERM HUP
status=0
wait "$pid" || status=$?
exit "$status"
