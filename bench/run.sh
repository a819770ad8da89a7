#!/bin/bash
# mod_maniac benchmarks against plain ProxyPass (see bench/README.md).
#   sh bench/run.sh                 full run (~16 min), writes bench/results/latest.md
#   BENCH_QUICK=1 sh bench/run.sh   short run (~4 min), writes bench/results/partial.md
# Prints numbers, never fails on them: the exit status is non-zero only when
# the bench itself could not run (no module, a tool missing, a port taken).
# Loopback only; every process it starts is stopped on exit.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
set -u

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BENCH=$ROOT/bench
QUICK=${BENCH_QUICK:-0}
# latest.md is the committed full run: a quick run or a chosen set of
# phases goes to partial.md (not tracked) unless BENCH_OUT says otherwise
if [ "$QUICK" = 1 ] || [ -n "${BENCH_PHASES:-}" ]; then
    OUT=${BENCH_OUT:-$BENCH/results/partial.md}
else
    OUT=${BENCH_OUT:-$BENCH/results/latest.md}
fi
PORT_BASE=${BENCH_PORT_BASE:-18700}
SRV_CPU=${BENCH_SERVER_CPU:-0}          # httpd and the mock upstream
CLI_CPU=${BENCH_CLIENT_CPU:-1}          # wrk and the measuring clients
PHASES=${BENCH_PHASES:-"ns st writes msg paced idle ttft slow conc cg"}
APACHE=${BENCH_HTTPD:-/usr/sbin/apache2}
MODDIR=${BENCH_MODDIR:-/usr/lib/apache2/modules}

if [ "$QUICK" = 1 ]; then
    DUR=${BENCH_DURATION:-2}; PASSES=${BENCH_PASSES:-1}
    TTFT_N=200; TTFT_BLOCKS=10; TTFT_BLOCK_N=20; LAT_N=5; CG_N=50; CG_STREAM_N=5
    CONC_BIG_MANIAC=${BENCH_CONC_BIG-"1024"}; CONC_BIG_PROXY=${BENCH_CONC_BIG_PROXY:-""}
    CONC_HUGE=${BENCH_CONC_HUGE-""}
    PACED_CHUNKS=${BENCH_PACED_CHUNKS:-100}; IDLE_S=${BENCH_IDLE_S:-3}; WRITES_S=2
else
    DUR=${BENCH_DURATION:-5}; PASSES=${BENCH_PASSES:-2}
    TTFT_N=1000; TTFT_BLOCKS=40; TTFT_BLOCK_N=50; LAT_N=10; CG_N=200; CG_STREAM_N=20
    CONC_BIG_MANIAC=${BENCH_CONC_BIG-"256 1024 2048 2112"}; CONC_BIG_PROXY=${BENCH_CONC_BIG_PROXY-"256 1024 2048"}
    CONC_HUGE=${BENCH_CONC_HUGE-"10000"}
    PACED_CHUNKS=${BENCH_PACED_CHUNKS:-300}; IDLE_S=${BENCH_IDLE_S:-5}; WRITES_S=4
fi
# the paced scenario: like a real model, many streams, a chunk every 20 ms
PACED_STREAMS=${BENCH_PACED_STREAMS:-64}
PACED_MS=${BENCH_PACED_MS:-20}
CONNS=${BENCH_CONNS:-"1 16 64"}
STREAM_CHUNKS=200
SLOW_CHUNKS=100000

MOCK_PORT=$PORT_BASE
MN_PORT=$((PORT_BASE + 1))
PP_PORT=$((PORT_BASE + 2))
MNBIG_PORT=$((PORT_BASE + 3))
PPBIG_PORT=$((PORT_BASE + 4))
CG_PORT=$((PORT_BASE + 5))

T_START=$(date +%s)
log() { printf '[bench %4ds] %s\n' $(( $(date +%s) - T_START )) "$*" >&2; }
die() { log "error: $*"; exit 1; }

# ---------------------------------------------------------------- cleanup --
RUN=$(mktemp -d /tmp/maniac-bench.XXXXXX)
chmod 755 "$RUN"
BG_PIDS=()
cleanup() {
    local p
    trap - EXIT INT TERM
    for p in "${BG_PIDS[@]}"; do
        kill -TERM "$p" 2>/dev/null
    done
    sleep 0.5
    for p in "${BG_PIDS[@]}"; do
        if kill -0 "$p" 2>/dev/null; then
            sleep 2
            kill -KILL "$p" 2>/dev/null
        fi
        wait "$p" 2>/dev/null
    done
    if [ "${BENCH_KEEP:-0}" != 1 ]; then
        rm -rf "$RUN"
    else
        log "kept $RUN"
    fi
}
trap cleanup EXIT
trap 'log "interrupted"; exit 130' INT TERM

# ------------------------------------------------------------------ deps --
need=""
command -v wrk >/dev/null 2>&1 || need="$need wrk"
command -v valgrind >/dev/null 2>&1 || need="$need valgrind"
command -v gcc >/dev/null 2>&1 || need="$need gcc"
command -v curl >/dev/null 2>&1 || need="$need curl"
command -v taskset >/dev/null 2>&1 || need="$need util-linux"
command -v ps >/dev/null 2>&1 || need="$need procps"
command -v strace >/dev/null 2>&1 || need="$need strace"
command -v node >/dev/null 2>&1 || need="$need nodejs"
if [ -n "$need" ]; then
    [ "$(id -u)" = 0 ] || die "missing:$need (run as root or install them)"
    log "installing$need"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq && apt-get install -y -qq --no-install-recommends $need >/dev/null \
        || die "apt-get install$need failed"
fi
[ -x "$APACHE" ] || die "$APACHE not found (apt-get install apache2)"
[ -f "$ROOT/build/mod_maniac.so" ] || make -C "$ROOT" all >&2 || die "cannot build the module"

ulimit -n "$(ulimit -Hn)" 2>/dev/null
# K held streams: the client holds K sockets in one process, the mock K
# upstream connections; httpd's children hold 2 per thread each
[ "$(ulimit -n)" -ge 8192 ] || log "warning: ulimit -n is $(ulimit -n); the 2048-stream test needs ~4500"
for k in $CONC_HUGE; do
    [ "$(ulimit -n)" -gt $((k + 64)) ] || log "warning: ulimit -n is $(ulimit -n); $k held streams need $((k + 64))"
done

mkdir -p "$RUN/bin" "$RUN/body" "$RUN/srv" "$RUN/cg"
chmod 777 "$RUN/cg"
for tool in mock_upstream sse_client; do
    gcc -O2 -Wall -Wextra -Werror -o "$RUN/bin/$tool" "$BENCH/$tool.c" || die "cannot build $tool"
done
# a snapshot of the module: others may rebuild build/ while this runs
cp "$ROOT/build/mod_maniac.so" "$RUN/mod_maniac.so"
chmod 755 "$RUN/mod_maniac.so"

RES=$RUN/results.jsonl
META=$RUN/meta.tsv
: > "$RES"
meta() { printf '%s\t%s\n' "$1" "$2" >> "$META"; }
: > "$META"

port_busy() { grep -qi ":$(printf '%04X' "$1") [0-9A-F:]* 0A " /proc/net/tcp 2>/dev/null; }
for p in $MOCK_PORT $MN_PORT $PP_PORT $MNBIG_PORT $PPBIG_PORT $CG_PORT; do
    port_busy "$p" && die "port $p is in use (set BENCH_PORT_BASE)"
done

# ------------------------------------------------------------------ meta --
meta date "$(date -u '+%Y-%m-%d %H:%M UTC')"
meta mode "$([ "$QUICK" = 1 ] && echo "quick (BENCH_QUICK=1)" || echo full)"
meta duration_s "$DUR"
meta passes "$PASSES"
meta nproc "$(nproc)"
meta cpu "$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
meta mem "$(free -g | awk '/^Mem:/{print $2 " GiB"}')"
meta kernel "$(uname -sr)"
meta apache "$($APACHE -v 2>/dev/null | sed -n 's/^Server version: //p')"
meta wrk "$(wrk -v 2>&1 | head -1 | sed 's/ Copyright.*//')"
meta gcc "$(gcc --version | head -1)"
meta valgrind "$(valgrind --version 2>/dev/null)"
meta node "$(node --version 2>/dev/null)"
meta module "$(cd "$ROOT" && git rev-parse --short HEAD 2>/dev/null)$(cd "$ROOT" && git status --porcelain -- src include mod_maniac.c 2>/dev/null | grep -q . && echo ' + uncommitted changes in src/') (build/mod_maniac.so built $(date -u -r "$ROOT/build/mod_maniac.so" '+%H:%M UTC'), sha256 $(sha256sum "$RUN/mod_maniac.so" | cut -c1-12))"
JANSSON_LIB=$(ldd "$RUN/mod_maniac.so" 2>/dev/null | awk '/libjansson/ {print $3}')
meta jansson_buildid "$(readelf -n "$(readlink -f "${JANSSON_LIB:-/nonexistent}")" 2>/dev/null | awk '/Build ID/ {print $3}')"
meta pinning "httpd + mock upstream: CPU $SRV_CPU (taskset -c $SRV_CPU); wrk and clients: CPU $CLI_CPU (taskset -c $CLI_CPU)"
meta load_start "$(cut -d' ' -f1-3 /proc/loadavg)"

# ------------------------------------------------------------ configs --
demo_mpm() {
    local f=$ROOT/httpd-conf/demo.conf blk=""
    [ -f "$f" ] && blk=$(awk '/<IfModule mpm_event_module>/{f=1;next} /<\/IfModule>/{if(f)exit}
                              f && $1 ~ /^[A-Za-z]/ {print $1, $2}' "$f")
    [ -n "$blk" ] || blk=$'StartServers 2\nThreadsPerChild 64\nMaxRequestWorkers 256\nServerLimit 4'
    printf '%s\n' "$blk"
}
DEMO_MPM=$(demo_mpm)
DEMO_MRW=$(printf '%s\n' "$DEMO_MPM" | awk '$1=="MaxRequestWorkers"{print $2}')
DEMO_MRW=${DEMO_MRW:-256}
BIG_MPM=$'StartServers 32\nServerLimit 32\nThreadsPerChild 64\nMaxRequestWorkers 2048\nMinSpareThreads 64\nMaxSpareThreads 2048'
# sized as README "Sizing" says for 10,000 streams: 40 children x 256 threads,
# 240 threads to spare for other requests (the probe)
HUGE_MPM=$'StartServers 40\nServerLimit 40\nThreadLimit 256\nThreadsPerChild 256\nMaxRequestWorkers 10240\nMinSpareThreads 256\nMaxSpareThreads 10240'
CG_MPM=$'StartServers 1\nServerLimit 1\nThreadsPerChild 4\nMaxRequestWorkers 4'
meta mpm_demo "$(printf '%s\n' "$DEMO_MPM" | paste -sd, | sed 's/,/, /g') (from httpd-conf/demo.conf)"
meta mpm_big "$(printf '%s\n' "$BIG_MPM" | paste -sd, | sed 's/,/, /g')"
meta mpm_huge "$(printf '%s\n' "$HUGE_MPM" | paste -sd, | sed 's/,/, /g')"

# gen_conf NAME PORT MPM-BLOCK HANDLER(maniac|proxypass|both)
gen_conf() {
    local name=$1 port=$2 mpm=$3 handler=$4 dir=$RUN/srv/$1
    mkdir -p "$dir"
    chmod 777 "$dir"
    {
        echo "# generated by bench/run.sh"
        echo "ServerName 127.0.0.1"
        echo "Listen 127.0.0.1:$port"
        echo "DefaultRuntimeDir $dir"
        echo "PidFile $dir/httpd.pid"
        if [ "$(id -u)" = 0 ]; then
            echo "User www-data"
            echo "Group www-data"
        fi
        echo "LoadModule mpm_event_module  $MODDIR/mod_mpm_event.so"
        echo "LoadModule authz_core_module $MODDIR/mod_authz_core.so"
        echo "LoadModule proxy_module      $MODDIR/mod_proxy.so"
        echo "LoadModule proxy_http_module $MODDIR/mod_proxy_http.so"
        echo "LoadModule maniac_module     $RUN/mod_maniac.so"
        echo "<IfModule mpm_event_module>"
        printf '%s\n' "$mpm" | sed 's/^/    /'
        echo "</IfModule>"
        echo "ListenBacklog 4096"
        echo "KeepAlive On"
        echo "MaxKeepAliveRequests 0"
        echo "KeepAliveTimeout 15"
        echo "Timeout 120"
        echo "ErrorLog $dir/error.log"
        echo "LogLevel warn"
        echo "ManiacProvider echo builtin:echo"
        case $handler in
        maniac|both)
            echo "ManiacProvider up  http://127.0.0.1:$MOCK_PORT/v1 timeout=120"
            echo "ManiacProvider ant http://127.0.0.1:$MOCK_PORT/v1 format=anthropic timeout=120"
            echo "<Location /v1>"
            echo "    SetHandler maniac"
            echo "</Location>"
            ;;
        esac
        case $handler in
        proxypass)
            echo "ProxyPass /v1/ http://127.0.0.1:$MOCK_PORT/v1/ timeout=120" ;;
        both)
            echo "ProxyPass /pp/v1/ http://127.0.0.1:$MOCK_PORT/v1/ timeout=120" ;;
        esac
    } > "$dir/httpd.conf"
}

declare -A SRV_PID SRV_PORT
wait_http() {   # PORT TIMEOUT_S
    local i code
    for ((i = 0; i < $2 * 10; i++)); do
        code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 1 "http://127.0.0.1:$1/health" 2>/dev/null)
        [ -n "$code" ] && [ "$code" != 000 ] && return 0
        sleep 0.1
    done
    return 1
}
start_httpd() { # NAME PORT
    local name=$1 dir=$RUN/srv/$1
    taskset -c "$SRV_CPU" "$APACHE" -d "$dir" -f "$dir/httpd.conf" -DFOREGROUND \
        >"$dir/stdout" 2>&1 &
    SRV_PID[$name]=$!
    SRV_PORT[$name]=$2
    BG_PIDS+=($!)
    wait_http "$2" 20 || { cat "$dir/stdout" "$dir/error.log" >&2 2>/dev/null; die "httpd $name did not start"; }
}
stop_httpd() {
    local pid=${SRV_PID[$1]}
    kill -TERM "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
}
# sum of VmRSS (KiB) of an httpd parent and its children
rss_kb() {
    local pp=$1
    { ps -o rss= -p "$pp"; ps -o rss= --ppid "$pp"; } 2>/dev/null | awk '{s += $1} END {print s + 0}'
}
nchildren() { ps -o pid= --ppid "$1" 2>/dev/null | wc -l; }
# background sampler: "ms rss_kb" lines every 100 ms until FILE.stop exists
start_sampler() { # PPID FILE
    rm -f "$2.stop"
    (
        t0=$(date +%s%N)
        while [ ! -e "$2.stop" ]; do
            echo "$(( ($(date +%s%N) - t0) / 1000000 )) $(rss_kb "$1")"
            sleep 0.1
        done
    ) > "$2" &
    SAMPLER_PID=$!
    BG_PIDS+=($!)
}
stop_sampler() { : > "$1.stop"; wait "$SAMPLER_PID" 2>/dev/null; }

# ----------------------------------------------------------------- bodies --
SYS='{"role":"system","content":"You are a concise assistant."}'
USR='{"role":"user","content":"Write a haiku about the sea."}'
WORDS=$(for ((i = 1; i <= STREAM_CHUNKS; i++)); do printf 'w%d ' "$i"; done | sed 's/ $//')
body() { # FILE MODEL STREAM(0|1) [USERTEXT]
    local msgs="[$SYS,$USR]" extra=""
    [ -n "${4:-}" ] && msgs="[$SYS,{\"role\":\"user\",\"content\":\"$4\"}]"
    [ "$3" = 1 ] && extra=',"stream":true,"stream_options":{"include_usage":true}'
    printf '{"model":"%s","messages":%s,"max_tokens":256,"temperature":0.7%s}' \
        "$2" "$msgs" "$extra" > "$RUN/body/$1"
}
TARGETS="direct proxypass maniac maniac-anthropic maniac-echo"
model_of() { # TARGET SPEC
    case $1 in
    maniac-anthropic) echo "ant/$2" ;;
    maniac-echo) echo "echo/$2" ;;
    *) echo "up/$2" ;;
    esac
}
for t in $TARGETS; do
    body "ns_$t.json" "$(model_of "$t" mock)" 0
    if [ "$t" = maniac-echo ]; then
        body "st_$t.json" "echo/words" 1 "$WORDS"
    else
        body "st_$t.json" "$(model_of "$t" "stream-n$STREAM_CHUNKS-d0")" 1
    fi
    body "lat_$t.json" "$(model_of "$t" stream-n50-d2)" 1
    body "slow_$t.json" "$(model_of "$t" "stream-n$SLOW_CHUNKS-d0")" 1
    body "hold_$t.json" "$(model_of "$t" stream-n100000-d1000)" 1
    body "paced_$t.json" "$(model_of "$t" "stream-n$PACED_CHUNKS-d$PACED_MS")" 1
done
body probe_echo.json echo/probe 0
# Messages-in (POST /v1/messages, Anthropic's request shape): to an Anthropic
# upstream (near-passthrough) and to an OpenAI one (translated both ways);
# ProxyPass forwards the same Anthropic body to the mock's /v1/messages
mbody() { # MODEL FILE
    printf '{"model":"%s","max_tokens":256,"system":"You are a concise assistant.","messages":[{"role":"user","content":"Write a haiku about the sea."}],"stream":true}' \
        "$1" > "$RUN/body/$2"
}
mbody "ant/stream-n$STREAM_CHUNKS-d0" msg_proxypass-anthropic.json
mbody "ant/stream-n$STREAM_CHUNKS-d0" msg_messages-anthropic.json
mbody "up/stream-n$STREAM_CHUNKS-d0" msg_messages-openai.json
cp "$RUN/body/st_proxypass.json" "$RUN/body/msg_proxypass.json"
MSG_TARGETS="proxypass-anthropic messages-anthropic proxypass messages-openai"
msg_url() { # TARGET
    case $1 in
    proxypass-anthropic) echo "http://127.0.0.1:$PP_PORT/v1/messages" ;;
    proxypass) echo "http://127.0.0.1:$PP_PORT/v1/chat/completions" ;;
    *) echo "http://127.0.0.1:$MN_PORT/v1/messages" ;;
    esac
}
url_of() { # TARGET
    case $1 in
    direct) echo "http://127.0.0.1:$MOCK_PORT/v1/chat/completions" ;;
    proxypass) echo "http://127.0.0.1:$PP_PORT/v1/chat/completions" ;;
    *) echo "http://127.0.0.1:$MN_PORT/v1/chat/completions" ;;
    esac
}
port_of() {
    case $1 in
    direct) echo "$MOCK_PORT" ;;
    proxypass) echo "$PP_PORT" ;;
    *) echo "$MN_PORT" ;;
    esac
}

# ------------------------------------------------------------------ start --
taskset -c "$SRV_CPU" "$RUN/bin/mock_upstream" -p "$MOCK_PORT" >"$RUN/mock.out" 2>&1 &
MOCK_PID=$!
BG_PIDS+=($MOCK_PID)
wait_http "$MOCK_PORT" 10 || die "mock upstream did not start"

gen_conf maniac "$MN_PORT" "$DEMO_MPM" maniac
gen_conf proxypass "$PP_PORT" "$DEMO_MPM" proxypass
start_httpd maniac "$MN_PORT"
start_httpd proxypass "$PP_PORT"
log "mock :$MOCK_PORT, maniac :$MN_PORT, proxypass :$PP_PORT, run dir $RUN"

# Which targets answer correctly?  (maniac-anthropic may not be built yet.)
declare -A OK_NS OK_ST
check_target() {
    local t=$1 url out
    url=$(url_of "$t")
    out=$(curl -s --max-time 10 -w '\n%{http_code}' -H 'content-type: application/json' \
        --data-binary "@$RUN/body/ns_$t.json" "$url")
    if [ "${out##*$'\n'}" = 200 ] && printf '%s' "$out" | grep -q '"chat.completion"'; then
        OK_NS[$t]=1
    else
        OK_NS[$t]=0
        log "$t non-streaming: n/a ($(printf '%s' "$out" | head -c 300 | tr '\n' ' '))"
    fi
    out=$(curl -s -N --max-time 20 -w '\n%{http_code}' -H 'content-type: application/json' \
        --data-binary "@$RUN/body/st_$t.json" "$url")
    if [ "${out##*$'\n'}" = 200 ] && printf '%s' "$out" | grep -q '^data: \[DONE\]' \
        && ! printf '%s' "$out" | grep -q '^data: {"error"' \
        && [ "$(printf '%s' "$out" | grep -c '"chat.completion.chunk"')" -ge "$STREAM_CHUNKS" ]; then
        OK_ST[$t]=1
    else
        OK_ST[$t]=0
        log "$t streaming: n/a ($(printf '%s' "$out" | head -c 300 | tr '\n' ' '))"
    fi
    printf '{"kind":"check","target":"%s","ns":%s,"st":%s}\n' "$t" "${OK_NS[$t]}" "${OK_ST[$t]}" >> "$RES"
}
for t in $TARGETS; do check_target "$t"; done

# ------------------------------------------------------------------- wrk --
# CPU ticks (utime+stime, 1/CLK_TCK s) of an httpd parent and its children,
# plus those of children it has reaped (cutime+cstime of the parent), so a
# child that exits during a measurement does not take its ticks with it
tree_ticks() {
    local pp=$1 p t=0
    [ -r "/proc/$pp/stat" ] && t=$(awk '{print $16 + $17}' "/proc/$pp/stat" 2>/dev/null || echo 0)
    for p in $pp $(ps -o pid= --ppid "$pp" 2>/dev/null); do
        [ -r "/proc/$p/stat" ] || continue
        t=$((t + $(awk '{print $14 + $15}' "/proc/$p/stat" 2>/dev/null || echo 0)))
    done
    echo "$t"
}
# user+nice+system ticks of a CPU from /proc/stat
cpu_ticks() { awk -v c="cpu$1" '$1 == c {print $2 + $3 + $4}' /proc/stat; }
CLK_TCK=$(getconf CLK_TCK)
run_wrk() { # KIND TARGET CONNS PASS DURATION BODYFILE [URL]
    local out js pp h0 h1 m0 m1 c0 c1 url=${7:-}
    case $2 in direct) pp="" ;; proxypass*) pp=${SRV_PID[proxypass]} ;; *) pp=${SRV_PID[maniac]} ;; esac
    [ -n "$url" ] || url=$(url_of "$2")
    h0=0; [ -n "$pp" ] && h0=$(tree_ticks "$pp")
    m0=$(tree_ticks "$MOCK_PID"); c0=$(cpu_ticks "$SRV_CPU")
    out=$(BENCH_BODY="$RUN/body/$6" taskset -c "$CLI_CPU" wrk -t1 -c"$3" -d"$5"s --timeout 10s \
        -s "$BENCH/wrk_post.lua" "$url" 2>&1)
    h1=0; [ -n "$pp" ] && h1=$(tree_ticks "$pp")
    m1=$(tree_ticks "$MOCK_PID"); c1=$(cpu_ticks "$SRV_CPU")
    js=$(printf '%s\n' "$out" | grep '^{"requests"' | tail -1)
    if [ -z "$js" ]; then
        log "wrk $1 $2 c$3 failed: $(printf '%s' "$out" | tail -3 | tr '\n' ' ')"
        return
    fi
    # httpd / mock CPU time during the run, and what the rest of the machine
    # spent on the server CPU (other users' work skews a point)
    printf '{"kind":"%s","target":"%s","conns":%s,"pass":%s,"clk_tck":%s,"httpd_ticks":%s,"mock_ticks":%s,"cpu_srv_ticks":%s,%s\n' \
        "$1" "$2" "$3" "$4" "$CLK_TCK" $((h1 - h0)) $((m1 - m0)) $((c1 - c0)) "${js#\{}" >> "$RES"
}
# RSS snapshot of both gateway instances
rss_snapshot() { # LABEL
    local s
    for s in proxypass maniac; do
        printf '{"kind":"rss","label":"%s","target":"%s","rss_kb":%s,"children":%s}\n' "$1" "$s" \
            "$(rss_kb "${SRV_PID[$s]}")" "$(nchildren "${SRV_PID[$s]}")" >> "$RES"
    done
}
wrk_phase() { # KIND body-prefix
    local kind=$1 pass t c ok
    for t in $TARGETS; do   # warm-up: processes, threads, upstream connections
        if [ "$kind" = ns ]; then ok=${OK_NS[$t]}; else ok=${OK_ST[$t]}; fi
        [ "$ok" = 1 ] && run_wrk warmup "$t" 64 0 1 "${kind}_$t.json"
    done
    for ((pass = 1; pass <= PASSES; pass++)); do
        for c in $CONNS; do
            for t in $TARGETS; do
                if [ "$kind" = ns ]; then ok=${OK_NS[$t]}; else ok=${OK_ST[$t]}; fi
                [ "$ok" = 1 ] || continue
                log "$kind pass $pass: $t, $c connections"
                run_wrk "$kind" "$t" "$c" "$pass" "$DUR" "${kind}_$t.json"
            done
        done
    done
}
has_phase() { case " $PHASES " in *" $1 "*) return 0 ;; esac; return 1; }

rss_snapshot start
has_phase ns && wrk_phase ns
has_phase ns && rss_snapshot after-ns
has_phase st && wrk_phase st
has_phase st && rss_snapshot after-st

# ------------------------------------------------------ writes per stream --
# System calls that write (write, writev, sendfile, sendmsg: client and
# upstream sockets together) per 200-chunk stream at 16 connections, counted
# by strace -c on every child of the instance: how well frames that are
# already there leave together, against ProxyPass's flushing.  strace slows
# both alike; the count per stream is what is compared, not the rate.
if has_phase writes; then
    for ((pass = 1; pass <= PASSES; pass++)); do
        for t in proxypass maniac maniac-anthropic; do
            [ "${OK_ST[$t]}" = 1 ] || continue
            case $t in proxypass*) srv=proxypass ;; *) srv=maniac ;; esac
            att=()
            for pid in $(ps -o pid= --ppid "${SRV_PID[$srv]}"); do att+=(-p "$pid"); done
            st_out=$RUN/strace-$t-$pass.txt
            strace -f -c -e trace=write,writev,sendfile,sendmsg -o "$st_out" "${att[@]}" 2>/dev/null &
            spid=$!
            sleep 1
            log "writes pass $pass: $t, 16 connections under strace"
            out=$(BENCH_BODY="$RUN/body/st_$t.json" taskset -c "$CLI_CPU" wrk -t1 -c16 -d"$WRITES_S"s \
                --timeout 10s -s "$BENCH/wrk_post.lua" "$(url_of "$t")" 2>&1)
            kill -INT "$spid" 2>/dev/null; wait "$spid" 2>/dev/null
            js=$(printf '%s\n' "$out" | grep '^{"requests"' | tail -1)
            calls=$(awk '$NF ~ /^(write|writev|sendfile|sendmsg)$/ { n += $4 } END { print n + 0 }' "$st_out" 2>/dev/null)
            [ -n "$js" ] && printf '{"kind":"writes","target":"%s","pass":%s,"conns":16,"calls":%s,%s\n' \
                "$t" "$pass" "${calls:-0}" "${js#\{}" >> "$RES"
        done
    done
fi

# ------------------------------------------------------------ messages-in --
# 200-chunk streams/s through POST /v1/messages, each against ProxyPass to
# the same kind of upstream stream in the same pass
declare -A OK_MSG
check_msg() {
    local t=$1 out
    if [ "$t" = proxypass ]; then OK_MSG[$t]=${OK_ST[proxypass]}; return; fi
    out=$(curl -s -N --max-time 20 -w '\n%{http_code}' -H 'content-type: application/json' \
        --data-binary "@$RUN/body/msg_$t.json" "$(msg_url "$t")")
    if [ "${out##*$'\n'}" = 200 ] && printf '%s' "$out" | grep -q '^event: message_stop' \
        && ! printf '%s' "$out" | grep -q '^event: error' \
        && [ "$(printf '%s' "$out" | grep -c '^event: content_block_delta')" -ge "$STREAM_CHUNKS" ]; then
        OK_MSG[$t]=1
    else
        OK_MSG[$t]=0
        log "$t (POST /v1/messages stream): n/a ($(printf '%s' "$out" | head -c 300 | tr '\n' ' '))"
    fi
}
if has_phase msg; then
    for t in $MSG_TARGETS; do
        check_msg "$t"
        printf '{"kind":"msgcheck","target":"%s","msg":%s}\n' "$t" "${OK_MSG[$t]}" >> "$RES"
        [ "${OK_MSG[$t]}" = 1 ] && run_wrk warmup "$t" 64 0 1 "msg_$t.json" "$(msg_url "$t")"
    done
    for ((pass = 1; pass <= PASSES; pass++)); do
        for c in $CONNS; do
            for t in $MSG_TARGETS; do
                [ "${OK_MSG[$t]}" = 1 ] || continue
                log "msg pass $pass: $t, $c connections"
                run_wrk msg "$t" "$c" "$pass" "$DUR" "msg_$t.json" "$(msg_url "$t")"
            done
        done
    done
fi

# ----------------------------------------------------------------- paced --
# A real model's pace: PACED_STREAMS streams at once, PACED_CHUNKS chunks
# each, PACED_MS apart (the mock paces them).  What the gateway costs on such
# traffic is CPU per chunk, not streams/s.
if has_phase paced; then
    for ((pass = 1; pass <= PASSES; pass++)); do
        for t in proxypass maniac maniac-anthropic; do
            [ "${OK_ST[$t]}" = 1 ] || continue
            if [ "$t" = proxypass ]; then srv=proxypass; else srv=maniac; fi
            log "paced pass $pass: $t, $PACED_STREAMS streams x $PACED_CHUNKS chunks, ${PACED_MS} ms apart"
            h0=$(tree_ticks "${SRV_PID[$srv]}"); m0=$(tree_ticks "$MOCK_PID"); c0=$(cpu_ticks "$SRV_CPU")
            js=$(taskset -c "$CLI_CPU" "$RUN/bin/sse_client" paced "$(port_of "$t")" \
                /v1/chat/completions "$RUN/body/paced_$t.json" "$PACED_STREAMS" \
                $(( PACED_CHUNKS * PACED_MS / 1000 * 3 + 30 )))
            h1=$(tree_ticks "${SRV_PID[$srv]}"); m1=$(tree_ticks "$MOCK_PID"); c1=$(cpu_ticks "$SRV_CPU")
            printf '{"kind":"paced","target":"%s","pass":%s,"pace_ms":%s,"chunks_per_stream":%s,"clk_tck":%s,"httpd_ticks":%s,"mock_ticks":%s,"cpu_srv_ticks":%s,%s\n' \
                "$t" "$pass" "$PACED_MS" "$PACED_CHUNKS" "$CLK_TCK" $((h1 - h0)) $((m1 - m0)) \
                $((c1 - c0)) "${js#\{}" >> "$RES"
        done
    done
fi

# --------------------------------------------------- idle RSS after load --
# What an instance keeps once the streams are over (same MPM for both)
if has_phase idle; then
    log "idle ${IDLE_S} s after the stream phases"
    sleep "$IDLE_S"
    rss_snapshot idle-after-load
fi

# ------------------------------------------------------------------ ttft --
if has_phase ttft; then
    for ((pass = 1; pass <= PASSES; pass++)); do
        for t in $TARGETS; do
            [ "${OK_ST[$t]}" = 1 ] || continue
            log "ttft pass $pass: $t"
            js=$(taskset -c "$CLI_CPU" "$RUN/bin/sse_client" ttft "$(port_of "$t")" \
                /v1/chat/completions "$RUN/body/st_$t.json" "$TTFT_N")
            printf '{"kind":"ttft","target":"%s","pass":%s,%s\n' "$t" "$pass" "${js#\{}" >> "$RES"
            [ "$t" = maniac-echo ] && continue
            js=$(taskset -c "$CLI_CPU" "$RUN/bin/sse_client" ttft "$(port_of "$t")" \
                /v1/chat/completions "$RUN/body/lat_$t.json" "$LAT_N")
            printf '{"kind":"lat","target":"%s","pass":%s,%s\n' "$t" "$pass" "${js#\{}" >> "$RES"
        done
    done
    # paired: short blocks of each target in turn, so that whatever drifts on
    # the machine between passes (other load, clocks) hits every target alike;
    # the report takes target − proxypass within each block
    log "ttft paired: $TTFT_BLOCKS blocks of $TTFT_BLOCK_N streams per target"
    for ((b = 1; b <= TTFT_BLOCKS; b++)); do
        for t in $TARGETS; do
            [ "${OK_ST[$t]}" = 1 ] || continue
            js=$(taskset -c "$CLI_CPU" "$RUN/bin/sse_client" ttft "$(port_of "$t")" \
                /v1/chat/completions "$RUN/body/st_$t.json" "$TTFT_BLOCK_N")
            printf '{"kind":"ttft_block","target":"%s","block":%s,%s\n' "$t" "$b" "${js#\{}" >> "$RES"
        done
    done
fi

# --------------------------------------------------- RSS over a slow stream --
if has_phase slow; then
    for t in proxypass maniac maniac-anthropic; do
        [ "${OK_ST[$t]}" = 1 ] || continue
        if [ "$t" = proxypass ]; then srv=proxypass; else srv=maniac; fi
        pp=${SRV_PID[$srv]}
        sleep 1
        idle=$(rss_kb "$pp")
        log "slow 100k-chunk stream: $t (idle RSS ${idle} KiB)"
        f=$RUN/rss_slow_$t.txt
        start_sampler "$pp" "$f"
        # 16 KiB receive buffer, 16 KiB reads, 3 ms pause: ~5 MB/s, far below
        # what the mock and the gateway can produce, so backpressure applies
        js=$(taskset -c "$CLI_CPU" "$RUN/bin/sse_client" slow "$(port_of "$t")" \
            /v1/chat/completions "$RUN/body/slow_$t.json" 16384 16384 3000)
        stop_sampler "$f"
        stats=$(awk -v idle="$idle" '
            { t[NR] = $1; r[NR] = $2; if ($2 > peak) peak = $2 }
            END {
                n = NR; if (n < 1) { print "\"samples\":0"; exit }
                e1 = int(n * 0.1) + 1; e2 = int(n * 0.3) + 1; l1 = int(n * 0.7) + 1
                for (i = e1; i <= e2 && i <= n; i++) if (r[i] > early) early = r[i]
                for (i = l1; i <= n; i++) if (r[i] > late) late = r[i]
                printf "\"samples\":%d,\"idle_kb\":%d,\"early_kb\":%d,\"late_kb\":%d,\"peak_kb\":%d", n, idle, early, late, peak
            }' "$f")
        printf '{"kind":"slow","target":"%s",%s,%s\n' "$t" "$stats" "${js#\{}" >> "$RES"
    done
fi

# --------------------------------------------------- concurrent slow streams --
# One level of the concurrent-stream test on a fresh httpd instance, so the
# RSS difference is what K streams cost and nothing left from earlier load.
conc_level() { # PROFILE(demo|big|huge) TARGET(maniac|proxypass) K
    local profile=$1 t=$2 k=$3 name="conc-$1-$2" port pp idle f js peak mpm handler probe first_s=12 i ss
    case $profile in
    demo) mpm=$DEMO_MPM ;;
    big) mpm=$BIG_MPM ;;
    *) mpm=$HUGE_MPM ;;
    esac
    # thousands of connects at once overflow the listen backlog (somaxconn):
    # the rest get in on SYN retries, seconds later
    [ "$k" -gt 4096 ] && first_s=40
    if [ "$t" = maniac ]; then port=$MNBIG_PORT; probe=probe_echo.json; else port=$PPBIG_PORT; probe=ns_proxypass.json; fi
    gen_conf "$name" "$port" "$mpm" "$t"
    start_httpd "$name" "$port"
    pp=${SRV_PID[$name]}
    sleep 3
    # every child started (StartServers) and settled before the idle figure
    ss=$(printf '%s\n' "$mpm" | awk '$1=="StartServers"{print $2}')
    for ((i = 0; i < 30; i++)); do
        [ "$(nchildren "$pp")" -ge "${ss:-1}" ] && break
        sleep 1
    done
    [ "$profile" = huge ] && sleep 5
    idle=$(rss_kb "$pp")
    f=$RUN/rss_hold_${name}_$k.txt
    log "concurrent streams: $profile MPM, $t, K=$k (fresh instance: idle RSS ${idle} KiB, $(nchildren "$pp") children)"
    start_sampler "$pp" "$f"
    js=$(taskset -c "$CLI_CPU" "$RUN/bin/sse_client" hold "$port" /v1/chat/completions \
        "$RUN/body/hold_$t.json" "$k" "$first_s" 3 /v1/chat/completions "$RUN/body/$probe")
    stop_sampler "$f"
    peak=$(awk '$2 > m {m = $2} END {print m + 0}' "$f")
    printf '{"kind":"conc","profile":"%s","target":"%s","idle_kb":%s,"peak_kb":%s,"children":%s,%s\n' \
        "$profile" "$t" "$idle" "$peak" "$(nchildren "$pp")" "${js#\{}" >> "$RES"
    stop_httpd "$name"
}
if has_phase conc; then
    if [ "${OK_ST[maniac]}" = 1 ]; then
        for k in ${BENCH_CONC_DEMO-$((DEMO_MRW - 16)) $DEMO_MRW $((DEMO_MRW + 64))}; do
            conc_level demo maniac "$k"
        done
        for k in $CONC_BIG_MANIAC; do
            conc_level big maniac "$k"
        done
    fi
    if [ "${OK_ST[proxypass]}" = 1 ]; then
        for k in $CONC_BIG_PROXY; do
            conc_level big proxypass "$k"
        done
    fi
    # the target: 10,000 slow streams with the MPM sized for them
    for k in $CONC_HUGE; do
        [ "${OK_ST[maniac]}" = 1 ] && conc_level huge maniac "$k"
    done
    for k in ${BENCH_CONC_HUGE_PROXY-$CONC_HUGE}; do
        [ "${OK_ST[proxypass]}" = 1 ] && conc_level huge proxypass "$k"
    done
fi

# -------------------------------------------------------------- callgrind --
# httpd -X (one process) under callgrind; instructions per request =
# (Ir of a run with N requests - Ir of a startup-only run) / N.  A second run
# collects only inside ap_run_handler for the per-function breakdown.
cg_run() { # LABEL N PATH BODY [extra valgrind args...]
    local label=$1 n=$2 path=$3 bodyf=$4 pid js tot
    shift 4
    # httpd drops root (User www-data) before callgrind writes its output:
    # the file must exist and be writable for that user
    : > "$RUN/cg/$label.out"
    chmod 666 "$RUN/cg/$label.out"
    valgrind --tool=callgrind --vgdb=no --callgrind-out-file="$RUN/cg/$label.out" --dump-instr=no \
        "$@" "$APACHE" -X -d "$RUN/srv/cg" -f "$RUN/srv/cg/httpd.conf" \
        >"$RUN/cg/$label.log" 2>&1 &
    pid=$!
    BG_PIDS+=($pid)
    local i
    for ((i = 0; i < 600; i++)); do port_busy "$CG_PORT" && break; sleep 0.1; done
    sleep 2
    js='{}'
    if [ "$n" -gt 0 ]; then
        js=$("$RUN/bin/sse_client" repeat "$CG_PORT" "$path" "$RUN/body/$bodyf" "$n")
    fi
    sleep 0.5
    kill -TERM "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
    tot=$(sed -n 's/^\(summary\|totals\): *\([0-9]*\).*/\2/p' "$RUN/cg/$label.out" 2>/dev/null | tail -1)
    printf '%s\t%s\n' "${tot:-0}" "$js"
}
if has_phase cg; then
    gen_conf cg "$CG_PORT" "$CG_MPM" both
    log "callgrind: startup-only run"
    base=$(cg_run startup 0 /v1/chat/completions ns_maniac.json | cut -f1)
    printf '{"kind":"cg","label":"startup","n":0,"ir":%s}\n' "${base:-0}" >> "$RES"
    cg_kind() { # LABEL TARGET-OK N PATH BODY FRAMES-PER-REQ [REF-LABEL]
        local label=$1 ok=$2 n=$3 path=$4 bodyf=$5 fr=$6 ref=${7:-} res tot js
        [ "$ok" = 1 ] || { printf '{"kind":"cg","label":"%s","na":true}\n' "$label" >> "$RES"; return; }
        log "callgrind: $label x $n"
        res=$(cg_run "$label" "$n" "$path" "$bodyf")
        tot=${res%%$'\t'*}
        js=${res#*$'\t'}
        printf '{"kind":"cg","label":"%s","n":%s,"ir":%s,"base":%s,"frames_per_req":%s,"ref":"%s","client":%s}\n' \
            "$label" "$n" "${tot:-0}" "${base:-0}" "$fr" "$ref" "$js" >> "$RES"
    }
    cg_kind maniac-openai "${OK_NS[maniac]}" "$CG_N" /v1/chat/completions ns_maniac.json 0
    cg_kind maniac-anthropic "${OK_NS[maniac-anthropic]}" "$CG_N" /v1/chat/completions ns_maniac-anthropic.json 0
    cg_kind maniac-echo "${OK_NS[maniac-echo]}" "$CG_N" /v1/chat/completions ns_maniac-echo.json 0
    cg_kind proxypass "${OK_NS[proxypass]}" "$CG_N" /pp/v1/chat/completions ns_proxypass.json 0
    cg_kind maniac-openai-stream "${OK_ST[maniac]}" "$CG_STREAM_N" /v1/chat/completions st_maniac.json "$STREAM_CHUNKS"
    cg_kind maniac-anthropic-stream "${OK_ST[maniac-anthropic]}" "$CG_STREAM_N" /v1/chat/completions st_maniac-anthropic.json "$STREAM_CHUNKS"
    cg_kind proxypass-stream "${OK_ST[proxypass]}" "$CG_STREAM_N" /pp/v1/chat/completions st_proxypass.json "$STREAM_CHUNKS"
    if has_phase msg; then   # Messages-in streams (the msg phase checked them)
        cg_kind messages-anthropic-stream "${OK_MSG[messages-anthropic]:-0}" "$CG_STREAM_N" /v1/messages msg_messages-anthropic.json "$STREAM_CHUNKS" proxypass-anthropic-stream
        cg_kind messages-openai-stream "${OK_MSG[messages-openai]:-0}" "$CG_STREAM_N" /v1/messages msg_messages-openai.json "$STREAM_CHUNKS" proxypass-stream
        cg_kind proxypass-anthropic-stream "${OK_MSG[proxypass-anthropic]:-0}" "$CG_STREAM_N" /pp/v1/messages msg_proxypass-anthropic.json "$STREAM_CHUNKS" proxypass-anthropic-stream
    fi
    # per-function breakdown inside the handler phase
    cg_tree() { # LABEL OK N PATH BODY
        [ "$2" = 1 ] || return
        log "callgrind: $1 (handler phase only) x $3"
        cg_run "tree-$1" "$3" "$4" "$5" --collect-atstart=no --toggle-collect=ap_run_handler >/dev/null
        callgrind_annotate --auto=no --inclusive=yes --threshold=100 "$RUN/cg/tree-$1.out" \
            > "$RUN/cg/tree-$1.incl.txt" 2>/dev/null
        callgrind_annotate --auto=no --threshold=100 "$RUN/cg/tree-$1.out" \
            > "$RUN/cg/tree-$1.self.txt" 2>/dev/null
        printf '{"kind":"cgtree","label":"%s","n":%s,"incl":"%s","self":"%s"}\n' "$1" "$3" \
            "$RUN/cg/tree-$1.incl.txt" "$RUN/cg/tree-$1.self.txt" >> "$RES"
    }
    cg_tree maniac-openai "${OK_NS[maniac]}" "$CG_N" /v1/chat/completions ns_maniac.json
    cg_tree maniac-anthropic "${OK_NS[maniac-anthropic]}" "$CG_N" /v1/chat/completions ns_maniac-anthropic.json
    cg_tree maniac-openai-stream "${OK_ST[maniac]}" "$CG_STREAM_N" /v1/chat/completions st_maniac.json
    cg_tree maniac-anthropic-stream "${OK_ST[maniac-anthropic]}" "$CG_STREAM_N" /v1/chat/completions st_maniac-anthropic.json
    cg_tree proxypass "${OK_NS[proxypass]}" "$CG_N" /pp/v1/chat/completions ns_proxypass.json
fi

# ---------------------------------------------------------------- report --
meta load_end "$(cut -d' ' -f1-3 /proc/loadavg)"
meta wall_s "$(( $(date +%s) - T_START ))"
meta mock_served "$(kill -0 "$MOCK_PID" 2>/dev/null && echo running)"
mkdir -p "$(dirname "$OUT")"
if node "$BENCH/report.mjs" "$RUN" > "$RUN/report.md"; then
    cp "$RUN/report.md" "$OUT"
    cat "$RUN/report.md"
    log "written to $OUT"
else
    log "report failed; raw results in $RES"
    BENCH_KEEP=1
fi
exit 0
