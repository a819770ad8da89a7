#!/bin/sh
# What a feature costs per request: instructions counted by callgrind in an
# apache2 with one child answering echo requests, the feature On vs Off, at
# two request counts so that startup cancels out:
#   cost = ((On[N2] - On[N1]) - (Off[N2] - Off[N1])) / (N2 - N1)
# Then the same A/B in wall time with ab (noisy on a shared machine).
#   sh bench/cost.sh metrics   ManiacMetrics On vs Off
#   sh bench/cost.sh auth      AuthType maniac with a key file and a key with
#                              rpm/tpm/budget/max-streams on shm counters vs no auth
# Prints numbers, never fails on them.  Loopback only.
set -eu
WHAT=${1:-metrics}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
MOD=$ROOT/build/mod_maniac.so
MODDIR=${BENCH_MODDIR:-/usr/lib/apache2/modules}
PORT=${BENCH_METRICS_PORT:-18790}
N1=${BENCH_METRICS_N1:-200}
N2=${BENCH_METRICS_N2:-1200}
RUN=$(mktemp -d /tmp/maniac-cost.XXXXXX)
chmod 755 "$RUN"
# the child drops to www-data before callgrind writes its file
mkdir -m 1777 "$RUN/cg"
PID=
cleanup() {
    [ -n "$PID" ] && kill -TERM "$PID" 2>/dev/null && wait "$PID" 2>/dev/null
    rm -rf "$RUN"
}
trap cleanup EXIT
for t in valgrind ab curl; do
    command -v $t >/dev/null || { echo "cost: $t missing" >&2; exit 1; }
done
printf '{"model":"echo/bench","messages":[{"role":"user","content":"one two three four"}]}' >"$RUN/body.json"
# a client key for the auth variant (the secret only ever in this run's files)
KEY=mk-bench-$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')
HASH=$(printf '%s' "$KEY" | sha256sum | cut -c1-64)
printf 'bench %s rpm=100000000 tpm=100000000000 budget=1000000/day max-streams=1000\n' "$HASH" >"$RUN/keys"
AUTH_HEADER="Authorization: Bearer $KEY"

feature() {   # feature ON|OFF: the config lines that differ
    case "$WHAT:$1" in
    metrics:*) echo "ManiacMetrics $1" ;;
    auth:On)   printf 'LoadModule authn_core_module %s/mod_authn_core.so\nLoadModule authz_user_module %s/mod_authz_user.so\n' "$MODDIR" "$MODDIR" ;;
    auth:Off)  ;;
    esac
}
location() {  # location ON|OFF: what goes inside <Location /v1>
    [ "$WHAT:$1" = auth:On ] && printf '    AuthType maniac\n    ManiacKeyFile %s/keys\n    Require valid-user\n' "$RUN"
    return 0
}

conf() {   # conf ON|OFF
    cat >"$RUN/httpd-$1.conf" <<CONF
ServerName 127.0.0.1
Listen 127.0.0.1:$PORT
DefaultRuntimeDir $RUN
PidFile $RUN/httpd.pid
$( [ "$(id -u)" = 0 ] && printf 'User www-data\nGroup www-data\n' )
LoadModule mpm_event_module  $MODDIR/mod_mpm_event.so
LoadModule authz_core_module $MODDIR/mod_authz_core.so
LoadModule proxy_module      $MODDIR/mod_proxy.so
LoadModule maniac_module     $MOD
ErrorLog $RUN/error.log
LogLevel warn
StartServers 1
ServerLimit 1
ThreadsPerChild 8
MinSpareThreads 1
MaxSpareThreads 8
MaxRequestWorkers 8
KeepAlive On
MaxKeepAliveRequests 0
ManiacProvider echo builtin:echo
$(feature "$1")
<Location /v1>
    SetHandler maniac
$(location "$1")
</Location>
<Location /metrics>
    SetHandler maniac-metrics
</Location>
CONF
}

wait_port() {
    i=0
    until curl -s -o /dev/null "http://127.0.0.1:$PORT/"; do
        i=$((i + 1)); [ $i -gt 600 ] && { echo "cost: apache2 did not start" >&2; cat "$RUN/error.log" >&2; exit 1; }
        sleep 0.1
    done
}

# instructions for a whole run: start, n requests, stop
count() {   # count ON|OFF n
    out=$RUN/cg/$1.$2
    valgrind --tool=callgrind --callgrind-out-file="$out.%p" \
        /usr/sbin/apache2 -f "$RUN/httpd-$1.conf" -DFOREGROUND 2>/dev/null &
    PID=$!
    wait_port
    ab -q -k -n "$2" -c 1 -p "$RUN/body.json" -T application/json -H "$AUTH_HEADER" \
        "http://127.0.0.1:$PORT/v1/chat/completions" >/dev/null 2>&1
    kill -TERM $PID; wait $PID 2>/dev/null || true
    PID=
    # parent and child, each with its own file
    for f in "$out".*; do sed -n 's/^summary: *//p' "$f" | head -1; done | awk '{s += $1} END {print s}'
}

conf On; conf Off
off1=$(count Off "$N1"); off2=$(count Off "$N2")
on1=$(count On "$N1");   on2=$(count On "$N2")
per_off=$(( (off2 - off1) / (N2 - N1) ))
per_on=$(( (on2 - on1) / (N2 - N1) ))
[ "$per_off" -gt 0 ] || { echo "cost: no callgrind totals ($off1 $off2 $on1 $on2)" >&2; exit 1; }
echo "$WHAT cost, callgrind, echo request, keep-alive, one child:"
echo "  instructions per request: Off $per_off, On $per_on, difference $((per_on - per_off)) ($(( (per_on - per_off) * 1000 / per_off ))/1000 of a request)"

# wall time: the same A/B with the normal MPM
rps() {   # rps ON|OFF
    /usr/sbin/apache2 -f "$RUN/httpd-$1.conf" -DFOREGROUND &
    PID=$!
    wait_port
    ab -q -k -n 500 -c 4 -p "$RUN/body.json" -T application/json -H "$AUTH_HEADER" \
        "http://127.0.0.1:$PORT/v1/chat/completions" >/dev/null 2>&1
    r=$(ab -k -n "${BENCH_METRICS_AB_N:-20000}" -c 8 -p "$RUN/body.json" -T application/json -H "$AUTH_HEADER" \
        "http://127.0.0.1:$PORT/v1/chat/completions" 2>/dev/null | sed -n 's/^Requests per second: *\([0-9.]*\).*/\1/p')
    kill -TERM $PID; wait $PID 2>/dev/null || true
    PID=
    echo "$r"
}
a=$(rps Off); b=$(rps On); c=$(rps Off); d=$(rps On)
echo "  ab -c 8 -k (requests/s, Off On Off On): $a $b $c $d"
