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
# libraries the pure units need (the unit tests link these), and the module
PURE_LIBS := -ljansson -lhiredis -lmemcached -lm
MN_LIBS   := $(PURE_LIBS) -lcrypto
# the published OpenAPI document is compiled in from docs/openapi.json
GLUE_SRCS += $(BUILD)/gen/openapi_doc.c

UNIT_SRCS := $(sort $(wildcard t/unit/test_*.c))
UNIT_BINS := $(patsubst t/unit/%.c,$(BUILD)/unit/%,$(UNIT_SRCS))
SAN       := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all
FIXTURES  ?= $(CURDIR)/t/fixtures
UNIT_CFLAGS := -g -O1 $(WARN) $(APR_CPP) $(APR_INC) -Iinclude -It/unit -DMN_FIXTURES='"$(FIXTURES)"'

.PHONY: all deps test unit unit-valgrind integration run bench clean lint test-asan install uninstall deb

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

$(BUILD)/gen/openapi_doc.c: docs/openapi.json Makefile
	@mkdir -p $(BUILD)/gen
	@{ echo '/* generated from docs/openapi.json by the Makefile: do not edit */'; \
	  echo 'const unsigned char mn_openapi_json[] = {'; \
	  od -An -v -tx1 docs/openapi.json | sed 's/ \([0-9a-f][0-9a-f]\)/0x\1,/g'; \
	  echo '0 };'; \
	  echo "const unsigned long mn_openapi_json_len = $$(wc -c < docs/openapi.json);"; \
	} > $@.tmp && mv -f $@.tmp $@

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

$(BUILD)/unit/%: t/unit/%.c $(BUILD)/libpure-asan.a $(HEADERS) $(wildcard t/unit/*.h)
	@mkdir -p $(BUILD)/unit
	$(CC) $(UNIT_CFLAGS) $(SAN) -o $@ $< $(BUILD)/libpure-asan.a $(PURE_LIBS) -lcmocka $(APR_LIBS)

# valgrind cannot run ASan binaries: a second, plain build of the same tests
$(BUILD)/unit-vg/%: t/unit/%.c $(BUILD)/libpure-vg.a $(HEADERS) $(wildcard t/unit/*.h)
	@mkdir -p $(BUILD)/unit-vg
	$(CC) $(UNIT_CFLAGS) -o $@ $< $(BUILD)/libpure-vg.a $(PURE_LIBS) -lcmocka $(APR_LIBS)

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
	sh bench/cost.sh metrics
	sh bench/cost.sh auth

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

# Debian layout: the module where apxs says, maniac.load/.conf in mods-available
# (a2enmod maniac), maniac-site.conf in conf-available (a2enconf maniac-site).
LIBEXECDIR    ?= $(shell $(APXS) -q LIBEXECDIR 2>/dev/null)
APACHE_CONFDIR ?= /etc/apache2

install: $(BUILD)/mod_maniac.so
	install -d $(DESTDIR)$(LIBEXECDIR) $(DESTDIR)$(APACHE_CONFDIR)/mods-available \
	    $(DESTDIR)$(APACHE_CONFDIR)/conf-available
	install -m 644 $(BUILD)/mod_maniac.so $(DESTDIR)$(LIBEXECDIR)/mod_maniac.so
	sed 's#/usr/lib/apache2/modules/#$(LIBEXECDIR)/#' httpd-conf/maniac.load \
	    >$(DESTDIR)$(APACHE_CONFDIR)/mods-available/maniac.load
	install -m 644 httpd-conf/maniac.conf $(DESTDIR)$(APACHE_CONFDIR)/mods-available/maniac.conf
	install -m 644 httpd-conf/maniac-site.conf $(DESTDIR)$(APACHE_CONFDIR)/conf-available/maniac-site.conf

uninstall:
	rm -f $(DESTDIR)$(LIBEXECDIR)/mod_maniac.so $(DESTDIR)$(APACHE_CONFDIR)/mods-available/maniac.load \
	    $(DESTDIR)$(APACHE_CONFDIR)/mods-available/maniac.conf \
	    $(DESTDIR)$(APACHE_CONFDIR)/conf-available/maniac-site.conf

# libapache2-mod-maniac_*.deb in build/deb/ (the source is copied there first:
# dpkg-buildpackage writes its results next to the source tree)
deb:
	sh t/deb-smoke.sh --build-only

clean:
	rm -rf $(BUILD)

# ---- fuzzing (t/fuzz): libFuzzer + ASan/UBSan over the pure units --------
#   make fuzz                  build every target, run each FUZZ_SECONDS (20)
#   make fuzz FUZZ_SECONDS=600 long runs; crashes land in build/fuzz/artifacts/
#   make fuzz-regress          replay t/fuzz/regress/* and t/fuzz/crashes/* once
FUZZ_CC      ?= clang
FUZZ_SECONDS ?= 20
FUZZ_FLAGS   ?= -timeout=10 -rss_limit_mb=2048 -max_len=65536
FUZZ_DIR     := $(BUILD)/fuzz
FUZZ_CFLAGS  := -g -O1 -std=c11 -Wall -Wextra -Werror -Wno-unused-parameter \
                -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
                -fno-omit-frame-pointer $(APR_CPP) $(APR_INC) -Iinclude -It/fuzz \
                $(if $(shell grep -l 'mn_error_scrub(mn_error \*e, const char \*secret)' \
                       include/mn_error.h),-DFZ_SCRUB_BY_KEY)
FUZZ_FORMATS := openai anthropic gemini
FUZZ_TARGETS := fuzz_request fuzz_sse fuzz_error fuzz_provider fuzz_jscan fuzz_face_responses fuzz_responses_pass \
                fuzz_face_messages fuzz_sigid fuzz_trace fuzz_cors \
                $(foreach f,$(FUZZ_FORMATS),fuzz_$(f)_response fuzz_$(f)_stream)
FUZZ_BINS    := $(addprefix $(FUZZ_DIR)/,$(FUZZ_TARGETS))
FUZZ_DEPS    := $(PURE_LIST) $(HEADERS) t/fuzz/fuzz.h

.PHONY: fuzz fuzz-build fuzz-regress

fuzz-build: $(FUZZ_BINS)

$(FUZZ_DIR)/fuzz_%: t/fuzz/fuzz_%.c $(FUZZ_DEPS)
	@mkdir -p $(FUZZ_DIR)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -o $@ $< $(PURE_LIST) $(PURE_LIBS) $(APR_LIBS)

# one source per kind, one binary per wire format
define mn_fuzz_format
$(FUZZ_DIR)/fuzz_$(1)_response: t/fuzz/fuzz_response.c $(FUZZ_DEPS)
	@mkdir -p $(FUZZ_DIR)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -DFZ_FORMAT=MN_FORMAT_$(shell echo $(1) | tr a-z A-Z) \
	  -o $$@ $$< $(PURE_LIST) $(PURE_LIBS) $(APR_LIBS)
$(FUZZ_DIR)/fuzz_$(1)_stream: t/fuzz/fuzz_stream.c $(FUZZ_DEPS)
	@mkdir -p $(FUZZ_DIR)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -DFZ_FORMAT=MN_FORMAT_$(shell echo $(1) | tr a-z A-Z) \
	  -o $$@ $$< $(PURE_LIST) $(PURE_LIBS) $(APR_LIBS)
endef
$(foreach f,$(FUZZ_FORMATS),$(eval $(call mn_fuzz_format,$(f))))

# the corpus grows in build/fuzz/corpus across runs; seeds and fixed crash
# inputs (t/fuzz/regress) are added each time; every target runs, then any
# failure fails the whole (open findings in t/fuzz/crashes: see fuzz-regress)
fuzz: fuzz-build
	@sh t/fuzz/seeds.sh $(FUZZ_DIR)/corpus
	@failed=""; for t in $(FUZZ_TARGETS); do \
	  mkdir -p $(FUZZ_DIR)/corpus/$$t $(FUZZ_DIR)/artifacts/$$t; \
	  [ -d t/fuzz/regress/$$t ] && cp -f t/fuzz/regress/$$t/* $(FUZZ_DIR)/corpus/$$t/; \
	  echo "== $$t ($(FUZZ_SECONDS) s)"; \
	  if $(FUZZ_DIR)/$$t $(FUZZ_FLAGS) -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 \
	    -dict=t/fuzz/json.dict -artifact_prefix=$(FUZZ_DIR)/artifacts/$$t/ \
	    $(FUZZ_DIR)/corpus/$$t </dev/null >$(FUZZ_DIR)/$$t.log 2>&1; then \
	    grep -E '^stat::number_of_executed_units' $(FUZZ_DIR)/$$t.log; \
	  else \
	    grep -aE -A3 'fuzz invariant|^SUMMARY|runtime error|ERROR: ' $(FUZZ_DIR)/$$t.log | head -20; \
	    echo "fuzz: $$t FAILED (input in $(FUZZ_DIR)/artifacts/$$t/, log $(FUZZ_DIR)/$$t.log)"; \
	    failed="$$failed $$t"; \
	  fi; \
	done; [ -z "$$failed" ] || { echo "fuzz: failed:$$failed"; exit 1; }; echo "fuzz: no crash"

fuzz-regress: fuzz-build
	@failed=0; for t in $(FUZZ_TARGETS); do \
	  for f in $$(find t/fuzz/regress/$$t t/fuzz/crashes/$$t -type f 2>/dev/null | sort); do \
	    if $(FUZZ_DIR)/$$t $(FUZZ_FLAGS) $$f </dev/null >$(FUZZ_DIR)/regress.log 2>&1; then \
	      echo "ok   $$t $$f"; \
	    else \
	      echo "FAIL $$t $$f: $$(grep -aE 'fuzz invariant|^SUMMARY|runtime error' \
	        $(FUZZ_DIR)/regress.log | head -1 | cut -c1-160)"; failed=$$((failed + 1)); \
	    fi; \
	  done; \
	done; [ $$failed = 0 ] || { echo "fuzz-regress: $$failed input(s) fail"; exit 1; }; \
	echo "fuzz-regress: clean"

# Differential fuzzing of src/core/jscan.c against Jansson (issue 15):
#   make fuzz-jscan FUZZ_TIME=1800   (corpus seeded from t/fixtures)
FUZZ_CC   ?= clang
FUZZ_TIME ?= 60
.PHONY: fuzz-jscan
$(BUILD)/fuzz/fuzz_jscan: t/fuzz/fuzz_jscan.c src/core/jscan.c src/core/jpath.c include/mn_jscan.h t/unit/jscan_diff.h
	@mkdir -p $(BUILD)/fuzz
	$(FUZZ_CC) -g -O1 -std=c11 -Iinclude -fsanitize=fuzzer,address,undefined \
	  -fno-sanitize-recover=all -o $@ t/fuzz/fuzz_jscan.c src/core/jscan.c src/core/jpath.c -ljansson
fuzz-jscan: $(BUILD)/fuzz/fuzz_jscan
	@mkdir -p $(BUILD)/fuzz/corpus-jscan
	@find t/fixtures -name '*.json' -exec cp {} $(BUILD)/fuzz/corpus-jscan/ \;
	@i=0; grep -h '^data: ' $$(find t/fixtures -name '*.sse') | cut -c7- | while IFS= read -r l; \
	  do i=$$((i+1)); printf '%s' "$$l" >$(BUILD)/fuzz/corpus-jscan/sse-$$i.json; done
	$(BUILD)/fuzz/fuzz_jscan -max_total_time=$(FUZZ_TIME) -max_len=4096 \
	  -dict=t/fuzz/jscan.dict $(BUILD)/fuzz/corpus-jscan
