# fuzz/fuzz.mk - libFuzzer harnesses (clang, ASan + UBSan). Included from the Makefile.
#
#   make fuzz              build every harness, run each for FUZZ_TIME seconds (default 300)
#   make fuzz-short        a fixed number of runs from a fixed seed (for make check:
#                          reproducible, the same inputs on every machine)
#   make fuzz-build        build only                      -> build/fuzz/<name>
#   make fuzz-regressions  run each harness once over fuzz/regressions/<name>/ (no fuzzing)
#   make fuzz FUZZ_NAMES="encode push" FUZZ_TIME=1800
#
# The core's C sources (every src/*.c) are compiled again into build/fuzz/obj-csv<block> with
# coverage and sanitizer instrumentation and linked into each harness: not the .so.
# Lua 5.4 (pkg-config lua5.4) and lua-cjson are the system's. scripts/fuzz.sh runs the
# harnesses; it exits non-zero if any of them crashes, leaks or breaks a promise.

FUZZ_CC      ?= clang
FUZZ_TIME    ?= 300
FUZZ_PC      ?= pkg-config
FUZZ_DIR     := build/fuzz
# Harnesses run by `make fuzz`. csv joins when src/csv.c provides core.csv_string.
FUZZ_HAVE_CSV := $(shell grep -l 'csv_string' src/*.c 2>/dev/null | head -n 1)
FUZZ_NAMES   ?= encode encode_gc push $(if $(FUZZ_HAVE_CSV),csv) http
FUZZ_SAN     := -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
# CSV files are read in blocks of FUZZ_CSV_BLOCK bytes (256 KiB in the real build), so
# that inputs of a few KiB cross many refills (src/csv.c, LF_CSV_BLOCK)
FUZZ_CSV_BLOCK ?= 64
FUZZ_CFLAGS  := -g -O1 -std=c99 -D_POSIX_C_SOURCE=200809L $(FUZZ_SAN) -DLF_CSV_BLOCK=$(FUZZ_CSV_BLOCK) \
                $(shell $(FUZZ_PC) --cflags lua5.4 libcurl libcrypto) \
                -DLAAFFIC_VERSION='"fuzz"'
FUZZ_LUALIBS := $(shell $(FUZZ_PC) --libs lua5.4)
FUZZ_CORELIBS := $(shell $(FUZZ_PC) --libs libcurl libcrypto)
FUZZ_CORE_SRC = $(wildcard src/*.c)
# (the block size is in the object directory's name: changing it rebuilds the core)
FUZZ_OBJ_DIR := $(FUZZ_DIR)/obj-csv$(FUZZ_CSV_BLOCK)
FUZZ_CORE_OBJ = $(FUZZ_CORE_SRC:src/%.c=$(FUZZ_OBJ_DIR)/%.o)
FUZZ_ROOT_DEF := -DFUZZ_ROOT='"$(CURDIR)"' -DFUZZ_DIR='"$(CURDIR)/fuzz"'

.PHONY: fuzz fuzz-short fuzz-build fuzz-regressions

fuzz-build: $(FUZZ_NAMES:%=$(FUZZ_DIR)/%_fuzz)

fuzz: fuzz-build
	@FUZZ_NAMES="$(FUZZ_NAMES)" scripts/fuzz.sh run $(FUZZ_TIME)

fuzz-short: fuzz-build
	@FUZZ_NAMES="$(FUZZ_NAMES)" scripts/fuzz.sh check

fuzz-regressions: fuzz-build
	@FUZZ_NAMES="$(FUZZ_NAMES)" scripts/fuzz.sh regressions

$(FUZZ_OBJ_DIR)/%.o: src/%.c $(wildcard src/*.h)
	@mkdir -p $(@D)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -c $< -o $@

# encode and csv: the instrumented core inside
$(FUZZ_DIR)/encode_fuzz: fuzz/encode_fuzz.c fuzz/common.h $(FUZZ_CORE_OBJ)
	@mkdir -p $(@D)
	$(FUZZ_CC) $(FUZZ_CFLAGS) $(FUZZ_ROOT_DEF) -fsanitize=fuzzer $< $(FUZZ_CORE_OBJ) \
	  $(FUZZ_LUALIBS) $(FUZZ_CORELIBS) -lm -o $@

$(FUZZ_DIR)/encode_gc_fuzz: fuzz/encode_gc_fuzz.c fuzz/common.h $(FUZZ_CORE_OBJ)
	@mkdir -p $(@D)
	$(FUZZ_CC) $(FUZZ_CFLAGS) $(FUZZ_ROOT_DEF) -fsanitize=fuzzer $< $(FUZZ_CORE_OBJ) \
	  $(FUZZ_LUALIBS) $(FUZZ_CORELIBS) -lm -o $@

# http: a loopback server in a thread of the harness
$(FUZZ_DIR)/http_fuzz: fuzz/http_fuzz.c fuzz/common.h $(FUZZ_CORE_OBJ)
	@mkdir -p $(@D)
	$(FUZZ_CC) $(FUZZ_CFLAGS) $(FUZZ_ROOT_DEF) -fsanitize=fuzzer $< $(FUZZ_CORE_OBJ) \
	  $(FUZZ_LUALIBS) $(FUZZ_CORELIBS) -lm -lpthread -o $@

$(FUZZ_DIR)/csv_fuzz: fuzz/csv_fuzz.c fuzz/common.h $(FUZZ_CORE_OBJ)
	@mkdir -p $(@D)
	$(FUZZ_CC) $(FUZZ_CFLAGS) $(FUZZ_ROOT_DEF) -fsanitize=fuzzer $< $(FUZZ_CORE_OBJ) \
	  $(FUZZ_LUALIBS) $(FUZZ_CORELIBS) -lm -o $@

# push: Lua code only; coverage from a Lua hook (see push_fuzz.c)
$(FUZZ_DIR)/push_fuzz: fuzz/push_fuzz.c fuzz/common.h
	@mkdir -p $(@D)
	$(FUZZ_CC) $(FUZZ_CFLAGS) $(FUZZ_ROOT_DEF) -fsanitize=fuzzer $< $(FUZZ_LUALIBS) -lm -o $@

# ---------------------------------------------------------------- coverage of the corpora
# make fuzz-cov: the C harnesses again with clang's source coverage (no sanitizers), run
# once over the working and seed corpora; prints llvm-cov's report for the encoder
# and the CSV reader (FUZZ_COV_SRC), and writes build/fuzz/cov/<name>.txt (line by line).
FUZZ_COV_NAMES ?= encode $(if $(FUZZ_HAVE_CSV),csv)
FUZZ_COV_CFLAGS := -g -O0 -std=c99 -D_POSIX_C_SOURCE=200809L -DLF_CSV_BLOCK=$(FUZZ_CSV_BLOCK) -fprofile-instr-generate \
                   -fcoverage-mapping $(shell $(FUZZ_PC) --cflags lua5.4 libcurl libcrypto) \
                   -DLAAFFIC_VERSION='"fuzz"'
FUZZ_COV_OBJ = $(FUZZ_CORE_SRC:src/%.c=$(FUZZ_DIR)/cov/obj-csv$(FUZZ_CSV_BLOCK)/%.o)
LLVM_PROFDATA ?= llvm-profdata
LLVM_COV ?= llvm-cov

.PHONY: fuzz-cov
.SECONDARY: $(FUZZ_COV_OBJ) $(FUZZ_CORE_OBJ)

$(FUZZ_DIR)/cov/obj-csv$(FUZZ_CSV_BLOCK)/%.o: src/%.c $(wildcard src/*.h)
	@mkdir -p $(@D)
	$(FUZZ_CC) $(FUZZ_COV_CFLAGS) -c $< -o $@

$(FUZZ_DIR)/cov/%_cov: fuzz/%_fuzz.c $(FUZZ_COV_OBJ)
	@mkdir -p $(@D)
	$(FUZZ_CC) $(FUZZ_COV_CFLAGS) $(FUZZ_ROOT_DEF) -fsanitize=fuzzer $< $(FUZZ_COV_OBJ) \
	  $(FUZZ_LUALIBS) $(FUZZ_CORELIBS) -lm -o $@

# the encoder and the CSV reader (src/*.c less the HTTP client and signing)
FUZZ_COV_SRC := $(filter-out src/http.c src/sign.c src/core.c,$(wildcard src/*.c))

fuzz-cov: $(FUZZ_COV_NAMES:%=$(FUZZ_DIR)/cov/%_cov)
	@for n in $(FUZZ_COV_NAMES); do \
	  mkdir -p $(FUZZ_DIR)/corpus/$$n; rm -f $(FUZZ_DIR)/cov/$$n.profraw; \
	  LAAFFIC_FUZZ_IGNORE=$${LAAFFIC_FUZZ_IGNORE-index-trap,cycle-cost} \
	  LLVM_PROFILE_FILE=$(FUZZ_DIR)/cov/$$n.profraw $(FUZZ_DIR)/cov/$${n}_cov -runs=0 \
	    $(FUZZ_DIR)/corpus/$$n fuzz/corpus/$$n > $(FUZZ_DIR)/cov/$$n.run.log 2>&1 || \
	    { tail -5 $(FUZZ_DIR)/cov/$$n.run.log; exit 1; }; \
	  $(LLVM_PROFDATA) merge -sparse $(FUZZ_DIR)/cov/$$n.profraw -o $(FUZZ_DIR)/cov/$$n.profdata || exit 1; \
	  echo "== $$n: coverage of the corpus"; \
	  $(LLVM_COV) report $(FUZZ_DIR)/cov/$${n}_cov -instr-profile=$(FUZZ_DIR)/cov/$$n.profdata \
	    $(FUZZ_COV_SRC) | sed 's/^/   /'; \
	  $(LLVM_COV) show $(FUZZ_DIR)/cov/$${n}_cov -instr-profile=$(FUZZ_DIR)/cov/$$n.profdata \
	    $(FUZZ_COV_SRC) > $(FUZZ_DIR)/cov/$$n.txt; \
	done
