# kascade - top-level build. `make` builds everything into build/release;
# `make SANITIZER=address` builds with ASan+UBSan into build/asan.
# `make demo` and `make test` install what is missing first.

CC      ?= cc
PKGS    := rdkafka hiredis libcurl libcjson libprotobuf-c libmicrohttpd \
           libpcre2-8 libcrypto
SANITIZER ?=

ifeq ($(SANITIZER),address)
B        := build/asan
SANFLAGS := -fsanitize=address,undefined -fno-sanitize-recover=undefined \
            -fno-omit-frame-pointer
OPT      := -O1
else ifeq ($(SANITIZER),)
B        := build/release
SANFLAGS :=
OPT      := -O2
else
$(error SANITIZER must be empty or 'address')
endif

GEN      := build/gen
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null)
CMOCKA_LIBS := $(shell pkg-config --libs cmocka 2>/dev/null)

WARN     := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes \
            -Wmissing-prototypes -Wno-missing-field-initializers \
            -Wno-format-truncation
CFLAGS   ?= -g $(OPT)
ALL_CFLAGS := -std=c11 -D_DEFAULT_SOURCE -D_GNU_SOURCE $(WARN) $(CFLAGS) \
              $(SANFLAGS) -MMD -MP -Icommon -I$(GEN) $(PKG_CFLAGS)
LDLIBS   := $(PKG_LIBS) -lpthread -lm
LDFLAGS  += $(SANFLAGS)

COMMON_SRC := $(wildcard common/*/*.c)
COMMON_OBJ := $(COMMON_SRC:%.c=$(B)/obj/%.o) $(B)/obj/gen/kascade.pb-c.o
LIB        := $(B)/libkascade.a

ROUTER_OBJ := $(patsubst %.c,$(B)/obj/%.o,$(wildcard router/*.c))
WORKER_OBJ := $(patsubst %.c,$(B)/obj/%.o,$(wildcard workers/*.c))
CLI_OBJ    := $(patsubst %.c,$(B)/obj/%.o,$(wildcard cli/*.c))
SIM_OBJ    := $(patsubst %.c,$(B)/obj/%.o,$(wildcard bench/modelsim/*.c))
BENCH_SRC  := $(wildcard bench/*.c)
UNIT_SRC   := $(wildcard tests/unit/test_*.c)
UNIT_BIN   := $(UNIT_SRC:tests/unit/%.c=$(B)/tests/%)

BINS := $(B)/bin/kascade-router $(B)/bin/kascade-worker $(B)/bin/kascade \
        $(B)/bin/kascade-modelsim $(BENCH_SRC:bench/%.c=$(B)/bin/bench-%)

.PHONY: all deps test unit integration demo bench format lint clean \
        fuzz fuzz-build
.DEFAULT_GOAL := all

all: $(BINS) $(UNIT_BIN)

$(GEN)/kascade.pb-c.c $(GEN)/kascade.pb-c.h: schemas/kascade.proto
	@mkdir -p $(GEN)
	protoc-c --c_out=$(GEN) -Ischemas schemas/kascade.proto

$(B)/obj/gen/kascade.pb-c.o: $(GEN)/kascade.pb-c.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -Wno-missing-prototypes -c $< -o $@

# Every object waits for the generated header (order-only: it may include it).
$(B)/obj/%.o: %.c | $(GEN)/kascade.pb-c.h
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -c $< -o $@

$(LIB): $(COMMON_OBJ)
	@rm -f $@
	$(AR) rcs $@ $^

$(B)/bin/kascade-router: $(ROUTER_OBJ) $(LIB)
$(B)/bin/kascade-worker: $(WORKER_OBJ) $(LIB)
$(B)/bin/kascade: $(CLI_OBJ) $(LIB)
$(B)/bin/kascade-modelsim: $(SIM_OBJ) $(LIB)
$(BENCH_SRC:bench/%.c=$(B)/bin/bench-%): $(B)/bin/bench-%: $(B)/obj/bench/%.o $(LIB)
# bench-decide measures the router's decision itself (route.c is pure).
$(B)/bin/bench-decide: $(B)/obj/router/route.o

$(B)/bin/%:
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) $(filter %.o,$^) $(filter %.a,$^) $(LDLIBS) -o $@

# Unit tests of worker modules link the module itself.
$(B)/tests/test_circuit: $(B)/obj/workers/circuit.o
$(B)/tests/test_fanout: $(B)/obj/workers/fanout.o $(B)/obj/workers/agree.o \
    $(B)/obj/workers/verifier.o

# Unit tests against a real redis-server link its helper (not a test).
$(B)/tests/test_ratelimit $(B)/tests/test_ctx $(B)/tests/test_done: \
    $(B)/obj/tests/unit/redis_server.o
$(B)/tests/test_keyslot: $(B)/obj/tests/unit/redis_server.o

# Test programs split from one module's tests link their shared fixture.
$(B)/tests/test_codec_decode $(B)/tests/test_codec_encode \
    $(B)/tests/test_codec_reject_json $(B)/tests/test_codec_reject_pb: \
    $(B)/obj/tests/unit/codec_fixture.o
$(B)/tests/test_budget_reserve $(B)/tests/test_budget_sweep \
    $(B)/tests/test_budget_batch $(B)/tests/test_budget_concurrent: \
    $(B)/obj/tests/unit/budget_fixture.o $(B)/obj/tests/unit/redis_server.o
$(B)/tests/test_config_read $(B)/tests/test_config_refuse \
    $(B)/tests/test_config_override: $(B)/obj/tests/unit/config_fixture.o
$(B)/tests/test_lr_train $(B)/tests/test_lr_file: $(B)/obj/tests/unit/lr_fixture.o
$(B)/tests/test_route_cases $(B)/tests/test_route_rules: \
    $(B)/obj/tests/unit/route_fixture.o
$(B)/tests/test_metrics_render $(B)/tests/test_metrics_http: \
    $(B)/obj/tests/unit/metrics_fixture.o

# Objects first, then the library: the extra objects above need it too.
$(B)/tests/%: $(B)/obj/tests/unit/%.o $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) $(filter %.o,$^) $(filter %.a,$^) $(LDLIBS) \
	    $(CMOCKA_LIBS) -o $@

# libFuzzer targets (tests/fuzz/fuzz_<name>.c), built by clang with
# ASan+UBSan into build/fuzz against common/ compiled the same way (not the
# gcc-built libkascade.a). `make fuzz` runs each for FUZZ_SECONDS (default
# 60) via tests/fuzz/run.sh; FUZZ_TARGETS="name ..." picks some.
FUZZ_B      := build/fuzz
FUZZ_CC     ?= clang
FUZZ_SAN    := -fsanitize=address,undefined -fno-sanitize-recover=undefined \
               -fno-omit-frame-pointer
FUZZ_CFLAGS := -std=c11 -D_DEFAULT_SOURCE -D_GNU_SOURCE \
               $(filter-out -Wno-format-truncation,$(WARN)) -g -O1 \
               $(FUZZ_SAN) -fsanitize=fuzzer-no-link -MMD -MP -Icommon \
               -I$(GEN) $(PKG_CFLAGS)
FUZZ_OBJ    := $(COMMON_SRC:%.c=$(FUZZ_B)/obj/%.o) \
               $(FUZZ_B)/obj/gen/kascade.pb-c.o
FUZZ_LIB    := $(FUZZ_B)/libkascade.a
FUZZ_BIN    := $(patsubst tests/fuzz/%.c,$(FUZZ_B)/bin/%,\
               $(wildcard tests/fuzz/fuzz_*.c))

$(FUZZ_B)/obj/gen/kascade.pb-c.o: $(GEN)/kascade.pb-c.c
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -Wno-missing-prototypes -c $< -o $@

$(FUZZ_B)/obj/%.o: %.c | $(GEN)/kascade.pb-c.h
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -c $< -o $@

$(FUZZ_LIB): $(FUZZ_OBJ)
	@rm -f $@
	$(AR) rcs $@ $^

$(FUZZ_B)/bin/%: $(FUZZ_B)/obj/tests/fuzz/%.o $(FUZZ_LIB)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_SAN) -fsanitize=fuzzer $^ $(LDLIBS) -o $@

# Keep the targets' objects (make would delete them as intermediates).
.SECONDARY: $(FUZZ_BIN:$(FUZZ_B)/bin/%=$(FUZZ_B)/obj/tests/fuzz/%.o)

fuzz-build: $(FUZZ_BIN)

fuzz: deps
	@$(MAKE) --no-print-directory fuzz-build
	@tests/fuzz/run.sh $(FUZZ_B) $(FUZZ_TARGETS)

# Installs the Debian packages (and nothing else) when something is missing.
deps:
	@deploy/local/deps.sh

# The test suite runs under ASan+UBSan unless TEST_SANITIZER= is given.
TEST_SANITIZER ?= address
test: deps
	@$(MAKE) --no-print-directory SANITIZER=$(TEST_SANITIZER) all
	@$(MAKE) --no-print-directory fuzz-build
	@tests/run.sh build/$(if $(TEST_SANITIZER),asan,release)
	@$(MAKE) --no-print-directory SANITIZER= all
	@tests/run.sh build/release memcheck

unit: all
	@tests/run.sh $(B) unit

integration: all
	@tests/run.sh $(B) integration

# The fault suite (tests/faults/README.md): the fleet on a real broker and
# Redis under kills, restarts and provider faults, and its money ledger.
# FAULTS_TASKS and FAULTS_SCENARIOS change the run.
.PHONY: test-faults
test-faults: deps
	@$(MAKE) --no-print-directory SANITIZER=$(TEST_SANITIZER) all
	@tests/faults/run.sh build/$(if $(TEST_SANITIZER),asan,release)

demo: deps
	@$(MAKE) --no-print-directory all
	@deploy/local/demo.sh $(B)

bench: deps
	@$(MAKE) --no-print-directory all
	@bench/all.sh $(B)

FORMAT_SRC = $(wildcard common/*/*.[ch] router/*.[ch] workers/*.[ch] \
             cli/*.[ch] bench/*.c bench/modelsim/*.[ch] tests/unit/*.[ch] \
             tests/fuzz/*.[ch])
format:
	clang-format -i $(FORMAT_SRC)

# Formatting, the layering (include chain; with the objects of $(B), no
# two files of router/ or workers/ calling each other), and every config
# key documented in README.md.
lint: all
	clang-format --dry-run -Werror $(FORMAT_SRC)
	python3 tests/lint/layers.py $(B)
	python3 tests/lint/config_keys.py

clean:
	rm -rf build

-include $(shell find build -name '*.d' 2>/dev/null)
