#!/bin/sh
# Builds the seed corpora of the fuzz targets from t/fixtures (and a few
# inline cases) into OUT/<target>/.  Each target's input starts with a few
# control bytes (see the target's header comment); the seeds get them too.
set -e
here=$(cd "$(dirname "$0")" && pwd)
fx="$here/../fixtures"
out=${1:?usage: seeds.sh OUTDIR}

seed() {   # seed TARGET NAME PREFIX-PRINTF FILE
    mkdir -p "$out/$1"
    { printf "$3"; cat "$4"; } >"$out/$1/$2"
}
seed_text() {   # seed_text TARGET NAME PREFIX-PRINTF TEXT
    mkdir -p "$out/$1"
    { printf "$3"; printf '%s' "$4"; } >"$out/$1/$2"
}

for f in "$fx"/requests/*.json; do
    n=$(basename "$f" .json)
    seed fuzz_request "$n" '\000' "$f"
    seed fuzz_request "$n-r" '\002' "$f"
done
seed_text fuzz_request inline1 '\000' '{"model":"p/m","messages":[{"role":"user","content":[{"type":"text","text":"hi"},{"type":"image_url","image_url":{"url":"data:image/png;base64,AAAA"}}]}],"reasoning_effort":"high","max_tokens":10,"thinking":{"type":"enabled","budget_tokens":5000},"stop":["x"," "],"tool_choice":{"type":"function","function":{"name":"f"}},"tools":[{"type":"function","function":{"name":"f","parameters":{"type":"object","$defs":{"a":{"type":"string"}},"properties":{"x":{"$ref":"#/$defs/a"}},"required":["x"]}}}],"response_format":{"type":"json_schema","json_schema":{"schema":{"type":"object"}}},"stream":true,"stream_options":{"include_usage":true},"tags":["t"],"metadata":{"a":"b"}}'
seed_text fuzz_request inline2 '\002' '{"model":"p/m","messages":[{"role":"system","content":"s"},{"role":"user","content":"q"},{"role":"assistant","content":null,"tool_calls":[{"id":"c1","type":"function","function":{"name":"f","arguments":"{\"a\":1}"}}]},{"role":"tool","tool_call_id":"c1","content":"r"},{"role":"assistant","content":[{"type":"refusal","refusal":"no "}]}],"temperature":1.5,"parallel_tool_calls":false,"user":"u","n":1,"logprobs":true}'

for fmt in openai anthropic gemini; do
    for f in "$fx/$fmt"/stream_*.sse; do
        case "$f" in *expected*) continue ;; esac
        n=$(basename "$f" .sse)
        seed "fuzz_${fmt}_stream" "$n" '\001\000' "$f"
        seed "fuzz_${fmt}_stream" "$n-r" '\003\005' "$f"
        seed "fuzz_${fmt}_stream" "$n-t" '\013\011' "$f"
        seed fuzz_sse "$fmt-$n" '\003\000' "$f"
        seed fuzz_sse "$fmt-$n-small" '\001\003' "$f"
    done
    for f in "$fx/$fmt"/response_*.json; do
        case "$f" in *expected*) continue ;; esac
        n=$(basename "$f" .json)
        seed "fuzz_${fmt}_response" "$n" '\000' "$f"
        seed "fuzz_${fmt}_response" "$n-r" '\002' "$f"
    done
done

# fuzz_error: byte 0 format (0 openai, 1 anthropic, 2 gemini, 3 scrubber),
# byte 1 status index (400 401 403 404 408 409 413 422 429 500 502 503 504 529),
# byte 2 Retry-After length (255: none), the value, then the body.
i=0
for fmt in openai anthropic gemini; do
    for f in "$fx/$fmt"/error_*.json; do
        case "$f" in *expected*) continue ;; esac
        n=$(basename "$f" .json)
        case "$n" in
            error_401*) st='\001' ;; error_404*) st='\003' ;; error_413*) st='\006' ;;
            error_429*) st='\010' ;; error_500*) st='\011' ;; error_503*) st='\013' ;;
            error_529*) st='\015' ;; *) st='\000' ;;
        esac
        seed fuzz_error "$fmt-$n" "\\00$i$st\\377" "$f"
        seed fuzz_error "$fmt-$n-ra" "\\00$i$st\\00230" "$f"
    done
    i=$((i + 1))
done
seed_text fuzz_error key-echo '\000\001\377' '{"error":{"message":"Incorrect API key provided: sk-FUZZKEY-0123456789abcdef","type":"invalid_request_error","param":null,"code":"invalid_api_key"}}'
seed_text fuzz_error scrub '\003\001\377' 'bad key sk-FUZZKEY-0123456789abcdef here'

for line in \
    'openai\nhttps://api.openai.com/v1\nkey-env=FZ_A\ntimeout=2.5\nretries=3' \
    'claude\nhttps://api.anthropic.com/v1\nformat=anthropic\nkey-file=k1,k2\nmax-tokens=100\nreasoning=on' \
    'gem\nhttp://127.0.0.1:9/v1beta\nformat=gemini\nkey-env=FZ_A,FZ_B\nidle-timeout=1\ntotal-timeout=30\nbreaker-failures=0\nbreaker-cooldown=5' \
    'echo\nbuiltin:echo' \
    'x\nhttps://h/\nkey-file=empty\nconnect-timeout=0.001\nfirst-byte-timeout=86400'; do
    i=$((i + 1))
    seed_text fuzz_provider "line$i" "$line" ''
done

# the Responses face: a client body (byte 0 even), chat frames (byte 0 odd)
seed_text fuzz_face_responses codex '\000' '{"model":"a/b","instructions":"sys","input":[{"role":"user","content":[{"type":"input_text","text":"hi"},{"type":"input_image","image_url":"https://x/y.png"}]},{"type":"reasoning","summary":[],"encrypted_content":"mnr1:[{\"type\":\"thinking\",\"thinking\":\"t\",\"signature\":\"S\"}]"},{"type":"function_call","call_id":"c","name":"f","arguments":"{}"},{"type":"function_call_output","call_id":"c","output":"r"},{"role":"assistant","content":[{"type":"output_text","text":"x"}]}],"tools":[{"type":"function","name":"f","parameters":{"type":"object"}},{"type":"web_search"}],"tool_choice":{"type":"function","name":"f"},"text":{"format":{"type":"json_schema","name":"n","schema":{"type":"object"}}},"reasoning":{"effort":"high"},"stream":true,"max_output_tokens":5}'
seed_text fuzz_face_responses chat '\001' 'data: {"choices":[{"index":0,"delta":{"reasoning_content":"r","thinking_blocks":[{"type":"thinking","thinking":"r","signature":"s"}]},"finish_reason":null}]}

data: {"choices":[{"index":0,"delta":{"content":"Hi"},"finish_reason":null}]}

data: {"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"c","function":{"name":"f","arguments":"{"}}]},"finish_reason":null}]}

data: {"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"}"}}]},"finish_reason":"length"}]}

data: {"choices":[],"usage":{"prompt_tokens":1,"completion_tokens":2,"total_tokens":3}}

data: [DONE]

'

# the Messages face (fuzz_face_messages.c): byte 0 mode (0 request, 1 chat
# frames, 2 Anthropic stream through the passthrough, 3 answers, 4 OpenAI
# or (bit 4) Gemini stream through its wire), byte 1 split seed / status
for f in "$fx"/anthropic/request_*.expected_anthropic.json; do
    n=$(basename "$f" .json)
    seed fuzz_face_messages "req-$n" '\000' "$f"
done
seed_text fuzz_face_messages req-claude-code '\000' '{"model":"claude-sonnet-4-5","max_tokens":32000,"stream":true,"system":[{"type":"text","text":"You are Claude Code.","cache_control":{"type":"ephemeral"}}],"messages":[{"role":"user","content":[{"type":"text","text":"list files"},{"type":"image","source":{"type":"base64","media_type":"image/png","data":"AAAA"}}]},{"role":"assistant","content":[{"type":"thinking","thinking":"t","signature":"S"},{"type":"text","text":"ok"},{"type":"tool_use","id":"toolu_1","name":"Bash","input":{"command":"ls"}}]},{"role":"user","content":[{"type":"tool_result","tool_use_id":"toolu_1","content":[{"type":"text","text":"a b"}],"is_error":false},{"type":"text","text":"go on"}]},{"role":"system","content":"reminder"}],"tools":[{"name":"Bash","description":"run","input_schema":{"type":"object","properties":{"command":{"type":"string"}},"required":["command"]}},{"type":"web_search_20250305","name":"web_search"}],"tool_choice":{"type":"auto","disable_parallel_tool_use":true},"thinking":{"type":"enabled","budget_tokens":2048},"temperature":1,"top_p":0.9,"top_k":5,"stop_sequences":["X"],"metadata":{"user_id":"u"},"output_config":{"effort":"high"},"context_management":{},"tags":["t"],"trace":{"id":"0af7651916cd43dd8448eb211c80319c"}}'
for f in "$fx"/*/stream_*.expected_openai*.sse; do
    n=$(basename "$(dirname "$f")")-$(basename "$f" .sse)
    seed fuzz_face_messages "frames-$n" '\001' "$f"
    seed fuzz_face_messages "frames-$n-small" '\021' "$f"
done
for f in "$fx"/anthropic/stream_*.sse; do
    case "$f" in *expected*) continue ;; esac
    n=$(basename "$f" .sse)
    seed fuzz_face_messages "pass-$n" '\002\000' "$f"
    seed fuzz_face_messages "pass-$n-t" '\012\007' "$f"
done
for f in "$fx"/openai/response_*.json "$fx"/anthropic/response_*.json "$fx"/anthropic/error_*.json; do
    case "$f" in *expected*) continue ;; esac
    n=$(basename "$(dirname "$f")")-$(basename "$f" .json)
    seed fuzz_face_messages "answer-$n" '\003\000' "$f"
    seed fuzz_face_messages "answer-$n-529" '\003\014' "$f"
done
for f in "$fx"/openai/stream_*.sse; do
    case "$f" in *expected*) continue ;; esac
    seed fuzz_face_messages "wire-openai-$(basename "$f" .sse)" '\004\000' "$f"
done
for f in "$fx"/gemini/stream_*.sse; do
    case "$f" in *expected*) continue ;; esac
    seed fuzz_face_messages "wire-gemini-$(basename "$f" .sse)" '\024\003' "$f"
    seed fuzz_face_messages "wire-gemini-$(basename "$f" .sse)-r" '\064\005' "$f"
done

# fuzz_sigid: byte 0 even: byte 1 cut, then call id + signature; odd: an id
# a client echoed (the ids the Gemini fixtures expect, cut and edited too)
seed_text fuzz_sigid pair '\000\010' 'call_abcCiQBjz1rX4m2c6N0W'
grep -rhoE 'gsig1_[A-Za-z0-9_-]+' "$fx"/gemini/*.expected_openai.* | sort -u | {
    i=0
    while read -r id; do
        i=$((i + 1))
        seed_text fuzz_sigid "id$i" '\001' "$id"
        seed_text fuzz_sigid "id$i-cut" '\001' "${id%?????}"
    done
}
seed_text fuzz_sigid plain '\001' 'call_0123456789'

# fuzz_trace: byte 0 (0 header, 1 body, 2 request id / tracestate), byte 1 span seed
seed_text fuzz_trace hdr '\000\002' '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01'
seed_text fuzz_trace hdr-v1 '\000\003' ' 01-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00-extra '
seed_text fuzz_trace body '\001\004' '{"trace":{"id":"0AF7651916CD43DD8448EB211C80319C","span_id":"b7ad6b7169203331"}}'
seed_text fuzz_trace reqid '\002\000' 'req_0123-abc'

# fuzz_cors: byte 0 (bit 0 OPTIONS, bit 1 ManiacCORS *, bit 2 a preflight's
# method header), Origin, newline, Access-Control-Request-Headers
seed_text fuzz_cors preflight '\005' 'https://app.example.com
content-type, x-stainless-os, anthropic-version'
seed_text fuzz_cors any '\007' 'http://localhost:8080
authorization,x-api-key'
seed_text fuzz_cors plain '\000' 'HTTPS://APP.EXAMPLE.COM'
