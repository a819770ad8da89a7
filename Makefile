# mod_maniac — build, test, run.
#   make          compile build/mod_maniac.so with apxs (compiles only)
#   make test     install what is missing, then unit (ASan/UBSan + valgrind) and integration tests
#                 (also against an ASan/UBSan build of the module: make test-asan)
#   make run      install what is missing, then run the gateway in the foreground on 127.0.0.1:8080
#   make bench    benchmarks against plain ProxyPass (prints numbers, never fails on them)

APXS      ?= apxs
CC        ?= cc
BUILD     := build
WARN      := -std=c11 -Wall -Wextra -Werror -Wno-unused-parameter
APR_INC   := $(shell apr-1-config --includes 2>/dev/null) $(shell apu-1-config --includes 2>/dev/null)
APR_CPP   := $(shell apr-1-config --cppflags 2>/dev/null)
APR_LIBS  := $(shell apr-1-config --link-ld 2>/dev/null) $(shell apu-1-config --link-ld 2>/dev/null)

# The layers are folders: src/httpd/ is the only code that includes httpd or
# mod_proxy headers; src/core/ and src/wire/ are pure (APR + Jansson) and
# unit-tested without a server.  apxs compiles a flat copy in build/obj, so
# basenames stay unique across folders (checked below).
GLUE_SRCS := $(wildcard src/httpd/*.c)
PURE_SRCS := $(wildcard src/core/*.c src/wire/*.c)
HEADERS   := $(wildcard include/*.h)
MOD_SRCS   = mod_maniac.c $(sort $(GLUE_SRCS)) $(sort $(PURE_SRCS))
PURE_LIST  = $(sort $(PURE_SRCS))
# libraries the module links (the unit tests link the pure part's only)
MN_LIBS   := -ljansson -lcrypto

UNIT_SRCS := $(sort $(wildcard t/unit/test_*.c))
UNIT_BINS := $(patsubst t/unit/%.c,$(BUILD)/unit/%,$(UNIT_SRCS))
SAN       := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all
FIXTURES  ?= $(CURDIR)/t/fixtures
UNIT_CFLAGS := -g -O1 $(WARN) $(APR_CPP) $(APR_INC) -Iinclude -It/unit -DMN_FIXTURES='"$(FIXTURES)"'

.PHONY: all deps test unit unit-valgrind integration run bench clean lint test-asan

all: $(BUILD)/mod_maniac.so

$(BUILD)/mod_maniac.so: $(MOD_SRCS) $(HEADERS) Makefile
	@dups=$$(for f in $(notdir $(MOD_SRCS)); do echo $$f; done | sort | uniq -d); \
	  if [ -n "$$dups" ]; then echo "same file name in two folders: $$dups" >&2; exit 1; fi
	@mkdir -p $(BUILD)/obj
	@rm -rf $(BUILD)/obj/*
	@cp $(MOD_SRCS) $(BUILD)/obj/
	cd $(BUILD)/obj && $(APXS) -c -o mod_maniac.la \
	    $(foreach f,$(WARN),-Wc,$(f)) -Wc,-O2 -I$(CURDIR)/include \
	    $(notdir $(MOD_SRCS)) $(MN_LIBS) >build.log 2>&1 || { cat build.log; exit 1; }
	@if grep -i 'warning:' $(BUILD)/obj/build.log; then exit 1; fi
	@# a new file, renamed over the old one: a running httpd keeps its mapping
	cp $(BUILD)/obj/.libs/mod_maniac.so $@.tmp && mv -f $@.tmp $@

deps:
	@sh t/deps.sh

# The pure units are compiled once per flavour into a static library that
# every unit test links (not once per test binary).
$(BUILD)/obj-asan/%.o: %.c $(HEADERS)
	@mkdir -p $(dir $@)
	$(CC) $(UNIT_CFLAGS) $(SAN) -c -o $@ $<

$(BUILD)/obj-vg/%.o: %.c $(HEADERS)
	@mkdir -p $(dir $@)
	$(CC) $(UNIT_CFLAGS) -c -o $@ $<

$(BUILD)/libpure-asan.a: $(patsubst %.c,$(BUILD)/obj-asan/%.o,$(PURE_LIST))
	@rm -f $@ && ar rcs $@ $^

$(BUILD)/libpure-vg.a: $(patsubst %.c,$(BUILD)/obj-vg/%.o,$(PURE_LIST))
	@rm -f $@ && ar rcs $@ $^

$(BUILD)/unit/%: t/unit/%.c $(BUILD)/libpure-asan.a $(HEADERS) t/unit/harness.h
	@mkdir -p $(BUILD)/unit
	$(CC) $(UNIT_CFLAGS) $(SAN) -o $@ $< $(BUILD)/libpure-asan.a -ljansson -lcmocka $(APR_LIBS)

# valgrind cannot run ASan binaries: a second, plain build of the same tests
$(BUILD)/unit-vg/%: t/unit/%.c $(BUILD)/libpure-vg.a $(HEADERS) t/unit/harness.h
	@mkdir -p $(BUILD)/unit-vg
	$(CC) $(UNIT_CFLAGS) -o $@ $< $(BUILD)/libpure-vg.a -ljansson -lcmocka $(APR_LIBS)

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
	$(MAKE) test-asan

run: deps
	$(MAKE) all
	sh httpd-conf/run.sh

bench: deps
	$(MAKE) all
	sh bench/run.sh

# The integration suite against an ASan/UBSan build of the module (build/asan/,
# beside the plain build/mod_maniac.so).  apache2 is not instrumented: the
# harness preloads libasan into it and sends every report to build/asan/logs;
# any report fails the run.  UBSan goes on after a report, so one run shows all.
ASAN_MOD_FLAGS := -g -O1 -fsanitize=address -fsanitize=undefined -fno-omit-frame-pointer

$(BUILD)/asan/mod_maniac.so: $(MOD_SRCS) $(HEADERS) Makefile
	@mkdir -p $(BUILD)/asan/obj
	@rm -rf $(BUILD)/asan/obj/*
	@cp $(MOD_SRCS) $(BUILD)/asan/obj/
	cd $(BUILD)/asan/obj && $(APXS) -c -o mod_maniac.la \
	    $(foreach f,$(WARN) $(ASAN_MOD_FLAGS),-Wc,$(f)) -I$(CURDIR)/include \
	    $(notdir $(MOD_SRCS)) $(MN_LIBS) -lasan -lubsan >build.log 2>&1 || { cat build.log; exit 1; }
	@if grep -i 'warning:' $(BUILD)/asan/obj/build.log; then exit 1; fi
	cp $(BUILD)/asan/obj/.libs/mod_maniac.so $@.tmp && mv -f $@.tmp $@

test-asan: $(BUILD)/asan/mod_maniac.so
	@rm -rf $(BUILD)/asan/logs && mkdir -p $(BUILD)/asan/logs && chmod 1777 $(BUILD)/asan/logs
	cd t/integration && MANIAC_MODULE=$(CURDIR)/$(BUILD)/asan/mod_maniac.so \
	  MANIAC_SANITIZER_LOGS=$(CURDIR)/$(BUILD)/asan/logs node --test --test-concurrency=1 *.test.mjs
	@if [ -n "$$(ls -A $(BUILD)/asan/logs)" ]; then head -n 60 $(BUILD)/asan/logs/*; \
	  echo "test-asan: sanitizer reports in $(BUILD)/asan/logs"; exit 1; fi; echo "test-asan: no sanitizer report"

lint:
	cppcheck --quiet --error-exitcode=1 --enable=warning,performance,portability \
	  --std=c11 -Iinclude --suppress=missingIncludeSystem mod_maniac.c src
	@# the pure layers never include httpd or mod_proxy headers
	@if grep -lE '#include [<"](httpd|http_|ap_|mod_proxy|mod_maniac)' src/core/*.c src/wire/*.c; then \
	  echo "pure units above include httpd headers" >&2; exit 1; fi

clean:
	rm -rf $(BUILD)
