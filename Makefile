# laaffic - Lua SDK for the LAAFFIC AI Agent group-call API.
#
#   make                 build laaffic.core for Lua 5.4       -> build/lua5.4/laaffic/core.so
#   make LUA=luajit      the same source against OpenResty's LuaJIT -> build/luajit/laaffic/core.so
#   make check           install missing Debian packages, build both, run every spec
#                        (Lua 5.4, LuaJIT, valgrind, luarocks install), print "N passed, N failed"
#   make demo            start the sandbox, create a task through the SDK, show it, stop
#   make example-openresty  examples/openresty against the sandbox: send, show pushes, stop
#   make bench           benchmarks (see README)
#   make bench-stall     the worker-stall benchmark alone (scripts/bench-stall.sh)
#   make fuzz            libFuzzer harnesses for the encoder, CSV reader, push parser
#   make check-resty-http RESTY_HTTP=<dir with resty/http.lua> [RESTY_STRING=<dir with
#                        resty/string.lua>]   spec/61 against a real lua-resty-http (LuaJIT)
#   make asan-specs      laaffic.core for Lua 5.4 under ASan + UBSan (build/asan/), and the
#                        memory-safety specs (ASAN_SPECS) run with it; any report fails
#   make docs            doc/openapi.yaml as one HTML page (build/docs/api.html)
#   make contract        doc/openapi.yaml: Redocly lint and the ajv differential run
#   make install         install with luarocks into the system tree
#
# LUA_INCDIR, CFLAGS, LDFLAGS and INST_* may come from the caller (luarocks passes them).

LUA        ?= lua5.4
PKG_CONFIG ?= pkg-config
ROCKSPEC   := $(firstword $(wildcard rockspec/laaffic-*.rockspec))
VERSION    := $(shell sed -n 's/^version *= *"\([^"-]*\)-[0-9]*".*/\1/p' $(ROCKSPEC))

ifeq ($(LUA),luajit)
  LUA_PC   ?= luajit
  LUA_BIN  ?= luajit
else
  LUA_PC   ?= $(LUA)
  LUA_BIN  ?= $(LUA)
endif

BUILD      := build/$(LUA)
SRC        := src/core.c src/sign.c src/encode.c src/json.c src/rules.c src/rows.c \
              src/rows_csv.c src/rows_jit.c src/body.c src/http.c src/csv.c src/csv_row.c src/csv_source.c \
              src/sys.c src/multi.c
HDR        := $(wildcard src/*.h)
OBJ        := $(SRC:src/%.c=$(BUILD)/obj/%.o)

WARN       := -Wall -Wextra -Wshadow -Wpointer-arith -Wstrict-prototypes -Wmissing-prototypes -Werror
CFLAGS     ?= -O2 -g
ALL_CFLAGS := $(CFLAGS) $(WARN) -std=c99 -D_POSIX_C_SOURCE=200809L -fPIC -fvisibility=hidden \
              $(shell $(PKG_CONFIG) --cflags $(LUA_PC) libcurl libcrypto) \
              -DLAAFFIC_VERSION='"$(VERSION)"'
LIBS       := $(shell $(PKG_CONFIG) --libs libcurl libcrypto)

.PHONY: all clean check test bench bench-stall deps install demo example-openresty check-resty-http docs contract contract-fuzz asan-specs

all: $(BUILD)/laaffic/core.so

$(BUILD)/obj/%.o: src/%.c $(HDR) $(ROCKSPEC)
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -c $< -o $@

$(BUILD)/laaffic/core.so: $(OBJ)
	@mkdir -p $(@D)
	$(CC) -shared $(LDFLAGS) -o $@ $(OBJ) $(LIBS)

deps:
	@scripts/deps.sh

demo: deps
	@$(MAKE) --no-print-directory -s LUA=lua5.4 all
	@$(MAKE) --no-print-directory -s LUA=luajit all
	@scripts/demo.sh

example-openresty: deps
	@$(MAKE) --no-print-directory -s LUA=luajit all
	@examples/openresty/run.sh

check: deps
	@scripts/check.sh

test: all
	@scripts/check.sh --quick

# spec/61 unchanged, with a real lua-resty-http first on nginx's package path instead of
# the stand-in in spec/fixtures (lua-resty-http 0.17.2 and later also need lua-resty-string)
check-resty-http:
	@test -n "$(RESTY_HTTP)" && test -f "$(RESTY_HTTP)/resty/http.lua" || \
	  { echo "make check-resty-http: RESTY_HTTP=<directory holding resty/http.lua> is needed" >&2; exit 2; }
	@test -z "$(RESTY_STRING)" || test -f "$(RESTY_STRING)/resty/string.lua" || \
	  { echo "make check-resty-http: RESTY_STRING must hold resty/string.lua" >&2; exit 2; }
	@$(MAKE) --no-print-directory -s LUA=luajit all
	@LAAFFIC_RESTY_HTTP="$(abspath $(RESTY_HTTP))" \
	  LAAFFIC_RESTY_STRING="$(if $(RESTY_STRING),$(abspath $(RESTY_STRING)))" \
	  LUA_PATH="lua/?.lua;lua/?/init.lua;spec/?.lua;;" LUA_CPATH="build/luajit/?.so;;" \
	  luajit /usr/bin/busted spec/61-resty-http_spec.lua

# Each benchmark runs on Lua 5.4 and on LuaJIT. bench/floor.c is the yardstick module.
bench: deps
	@for lua in lua5.4 luajit; do \
	  $(MAKE) --no-print-directory -s LUA=$$lua all build/$$lua/floor.so || exit 1; \
	  bin=$$lua; \
	  LUA_PATH="lua/?.lua;lua/?/init.lua;;" LUA_CPATH="build/$$lua/?.so;;" $$bin bench/encode.lua || exit 1; \
	  LUA_PATH="lua/?.lua;lua/?/init.lua;;" LUA_CPATH="build/$$lua/?.so;;" $$bin bench/csv.lua || exit 1; \
	done
	@$(MAKE) --no-print-directory -s LUA=luajit all
	@for lua in lua5.4 luajit; do scripts/bench-send.sh $$lua build/$$lua || exit 1; done
	@for lua in lua5.4 luajit; do scripts/bench-split.sh $$lua build/$$lua || exit 1; done
	@scripts/bench-push.sh luajit build/luajit
	@scripts/bench-stall.sh

# ping latency of one nginx worker while it creates a 200,000-number task (README)
bench-stall: deps
	@$(MAKE) --no-print-directory -s LUA=luajit all
	@scripts/bench-stall.sh

$(BUILD)/floor.so: bench/floor.c
	@mkdir -p $(@D)
	$(CC) -O2 -shared -fPIC $(shell $(PKG_CONFIG) --cflags $(LUA_PC)) $< -o $@

# doc/openapi.yaml rendered to one HTML page (Redoc, inlined: it opens offline)
docs: deps
	@REDOCLY_TELEMETRY=off REDOCLY_SUPPRESS_UPDATE_NOTICE=true node_modules/.bin/redocly \
	  build-docs doc/openapi.yaml --inlineBundle --title "LAAFFIC AI Agent group call" \
	  -o build/docs/api.html 2>&1 | grep -v '[║╔╚]' | grep -v '^ *$$'
	@echo "make docs: build/docs/api.html"

# the contract's checks alone: Redocly lint and the ajv differential run (CONTRACT_N tasks)
CONTRACT_N ?= 10000
contract: deps all
	@scripts/contract.sh $(CONTRACT_N)

# make fuzz also runs the differential run on 200,000 tasks from a new seed
fuzz: contract-fuzz
contract-fuzz: deps all
	@CONTRACT_SEED=$$(date +%s) scripts/contract.sh 200000

install: deps
	luarocks make --deps-mode=none $(ROCKSPEC)

clean:
	rm -rf build

# The core built with AddressSanitizer and UBSan, loaded into the system's lua5.4 with the
# sanitizer runtime preloaded. Reports go to build/asan/report.*: any such file fails.
ASAN_CC    ?= clang-14
ASAN_DIR   := build/asan
ASAN_RT     = $(shell $(ASAN_CC) -print-file-name=libclang_rt.asan-x86_64.so)
# the memory-safety specs, and the rules and warnings specs (the encoder's error paths)
ASAN_SPECS ?= --exclude-tags=slow spec/24-core-safety_spec.lua spec/11-rules_spec.lua spec/25-warnings_spec.lua \
              spec/27-encoder_spec.lua spec/28-body_spec.lua
ASAN_OBJ   := $(SRC:src/%.c=$(ASAN_DIR)/obj/%.o)
ASAN_CFLAGS := -g -O1 -fno-omit-frame-pointer -fsanitize=address,undefined \
               -fno-sanitize-recover=all $(WARN) -std=c99 -D_POSIX_C_SOURCE=200809L -fPIC \
               -fvisibility=hidden $(shell $(PKG_CONFIG) --cflags lua5.4 libcurl libcrypto) \
               -DLAAFFIC_VERSION='"$(VERSION)"'

$(ASAN_DIR)/obj/%.o: src/%.c $(HDR) $(ROCKSPEC)
	@mkdir -p $(@D)
	$(ASAN_CC) $(ASAN_CFLAGS) -c $< -o $@

$(ASAN_DIR)/laaffic/core.so: $(ASAN_OBJ)
	@mkdir -p $(@D)
	$(ASAN_CC) -shared -fsanitize=address,undefined -o $@ $(ASAN_OBJ) $(LIBS)

asan-specs: $(ASAN_DIR)/laaffic/core.so
	@$(MAKE) --no-print-directory -s LUA=lua5.4 all
	@rm -f $(ASAN_DIR)/report.*
	@LUA_PATH="lua/?.lua;lua/?/init.lua;spec/?.lua;;" LUA_CPATH="$(ASAN_DIR)/?.so;;" \
	  LD_PRELOAD="$(ASAN_RT)" LAAFFIC_ASAN=1 \
	  ASAN_OPTIONS="detect_leaks=0:abort_on_error=1:log_path=$(CURDIR)/$(ASAN_DIR)/report" \
	  UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:log_path=$(CURDIR)/$(ASAN_DIR)/report" \
	  lua5.4 /usr/bin/busted $(ASAN_SPECS); rc=$$?; \
	if ls $(ASAN_DIR)/report.* > /dev/null 2>&1; then \
	  cat $(ASAN_DIR)/report.* | head -60; echo "asan-specs: sanitizer reports in $(ASAN_DIR)/"; exit 1; \
	fi; exit $$rc

# libFuzzer harnesses: make fuzz, fuzz-short, fuzz-build, fuzz-regressions (fuzz/README.md)
include fuzz/fuzz.mk
