# mod_maniac — build, test, run.
#   make          compile build/mod_maniac.so with apxs (compiles only)
#   make test     install what is missing, then unit (ASan/UBSan + valgrind) and integration tests
#   make run      install what is missing, then run the gateway in the foreground on 127.0.0.1:8080
#   make bench    benchmarks against plain ProxyPass (prints numbers, never fails on them)

APXS      ?= apxs
CC        ?= cc
BUILD     := build
WARN      := -std=c11 -Wall -Wextra -Werror -Wno-unused-parameter
APR_INC   := $(shell apr-1-config --includes 2>/dev/null) $(shell apu-1-config --includes 2>/dev/null)
APR_CPP   := $(shell apr-1-config --cppflags 2>/dev/null)
APR_LIBS  := $(shell apr-1-config --link-ld 2>/dev/null) $(shell apu-1-config --link-ld 2>/dev/null)

# Units that need httpd; everything else in src/ is pure (APR + Jansson) and unit-tested.
GLUE_SRCS := src/handler.c src/upstream.c
PURE_SRCS := $(filter-out $(GLUE_SRCS),$(sort $(wildcard src/*.c)))
# new code goes in folders: src/core (pure), src/httpd (glue); apxs copies
# sources flat into build/obj, so basenames stay unique
GLUE_SRCS += src/httpd/auth.c
PURE_SRCS += src/core/keys.c
PURE_SRCS += src/core/jscan.c
HEADERS   := $(wildcard include/*.h)
MOD_SRCS  := mod_maniac.c $(GLUE_SRCS) $(PURE_SRCS)

UNIT_SRCS := $(sort $(wildcard t/unit/test_*.c))
UNIT_BINS := $(patsubst t/unit/%.c,$(BUILD)/unit/%,$(UNIT_SRCS))
SAN       := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all
FIXTURES  ?= $(CURDIR)/t/fixtures
UNIT_CFLAGS := -g -O1 $(WARN) $(APR_CPP) $(APR_INC) -Iinclude -It/unit -DMN_FIXTURES='"$(FIXTURES)"'

.PHONY: all deps test unit unit-valgrind integration run bench clean lint

all: $(BUILD)/mod_maniac.so

$(BUILD)/mod_maniac.so: $(MOD_SRCS) $(HEADERS) Makefile
	@mkdir -p $(BUILD)/obj
	@rm -rf $(BUILD)/obj/*
	@cp $(MOD_SRCS) $(BUILD)/obj/
	cd $(BUILD)/obj && $(APXS) -c -o mod_maniac.la \
	    $(foreach f,$(WARN),-Wc,$(f)) -Wc,-O2 -I$(CURDIR)/include \
	    $(notdir $(MOD_SRCS)) -ljansson -lcrypto >build.log 2>&1 || { cat build.log; exit 1; }
	@if grep -i 'warning:' $(BUILD)/obj/build.log; then exit 1; fi
	@# a new file, renamed over the old one: a running httpd keeps its mapping
	cp $(BUILD)/obj/.libs/mod_maniac.so $@.tmp && mv -f $@.tmp $@

deps:
	@sh t/deps.sh

$(BUILD)/unit/%: t/unit/%.c $(PURE_SRCS) $(HEADERS) t/unit/harness.h
	@mkdir -p $(BUILD)/unit
	$(CC) $(UNIT_CFLAGS) $(SAN) -o $@ $< $(PURE_SRCS) -ljansson -lcmocka $(APR_LIBS)

# valgrind cannot run ASan binaries: a second, plain build of the same tests
$(BUILD)/unit-vg/%: t/unit/%.c $(PURE_SRCS) $(HEADERS) t/unit/harness.h
	@mkdir -p $(BUILD)/unit-vg
	$(CC) $(UNIT_CFLAGS) -o $@ $< $(PURE_SRCS) -ljansson -lcmocka $(APR_LIBS)

unit: $(UNIT_BINS)
	@set -e; for t in $(UNIT_BINS); do echo "== $$t"; $$t; done

unit-valgrind: $(patsubst t/unit/%.c,$(BUILD)/unit-vg/%,$(UNIT_SRCS))
	@set -e; for t in $^; do echo "== valgrind $$t"; \
	  MN_QUICK=1 valgrind -q --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite \
	    $$t >/dev/null; done; echo "valgrind: clean"

integration: $(BUILD)/mod_maniac.so
	cd t/integration && node --test --test-concurrency=1 *.test.mjs

test: deps
	$(MAKE) lint
	$(MAKE) all
	$(MAKE) unit
	$(MAKE) unit-valgrind
	$(MAKE) integration

run: deps
	$(MAKE) all
	sh httpd-conf/run.sh

bench: deps
	$(MAKE) all
	sh bench/run.sh

lint:
	cppcheck --quiet --error-exitcode=1 --enable=warning,performance,portability \
	  --std=c11 -Iinclude --suppress=missingIncludeSystem mod_maniac.c src

clean:
	rm -rf $(BUILD)

# Differential fuzzing of src/core/jscan.c against Jansson (issue 15):
#   make fuzz-jscan FUZZ_TIME=1800   (corpus seeded from t/fixtures)
FUZZ_CC   ?= clang
FUZZ_TIME ?= 60
.PHONY: fuzz-jscan
$(BUILD)/fuzz/fuzz_jscan: t/fuzz/fuzz_jscan.c src/core/jscan.c include/mn_jscan.h t/unit/jscan_diff.h
	@mkdir -p $(BUILD)/fuzz
	$(FUZZ_CC) -g -O1 -std=c11 -Iinclude -fsanitize=fuzzer,address,undefined \
	  -fno-sanitize-recover=all -o $@ t/fuzz/fuzz_jscan.c src/core/jscan.c -ljansson
fuzz-jscan: $(BUILD)/fuzz/fuzz_jscan
	@mkdir -p $(BUILD)/fuzz/corpus-jscan
	@find t/fixtures -name '*.json' -exec cp {} $(BUILD)/fuzz/corpus-jscan/ \;
	@i=0; grep -h '^data: ' $$(find t/fixtures -name '*.sse') | cut -c7- | while IFS= read -r l; \
	  do i=$$((i+1)); printf '%s' "$$l" >$(BUILD)/fuzz/corpus-jscan/sse-$$i.json; done
	$(BUILD)/fuzz/fuzz_jscan -max_total_time=$(FUZZ_TIME) -max_len=4096 \
	  -dict=t/fuzz/jscan.dict $(BUILD)/fuzz/corpus-jscan
