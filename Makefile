# moecard top-level Makefile: one non-recursive build. Each directory adds its sources, tests and
# targets through its own .mk fragment. Variants: B=build (release) and B=build/asan SAN=1
# (AddressSanitizer + UBSan); `make test` builds and runs both.

B       ?= build
SAN     ?=
CC      ?= gcc
PYTHON  ?= /usr/bin/python3
STRICT  ?= 1

WARN     := -Wall -Wextra -Wshadow -Wno-unused-parameter
ifeq ($(STRICT),1)
WARN     += -Werror
endif
CPPFLAGS := -I. -Ihost -Ihls/include -Ifirmware/abi -Idrivers -Iboard -D_GNU_SOURCE
CFLAGS   := -std=c11 -g $(WARN) -pthread -fno-strict-aliasing
ifeq ($(SAN),1)
CFLAGS   += -O1 -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
LDFLAGS  += -fsanitize=address,undefined
else ifeq ($(SAN),fuzz)
# library objects for libFuzzer targets (tests/fuzz.sh builds this variant with CC=clang)
CFLAGS   += -O1 -fsanitize=fuzzer-no-link,address,undefined -fno-omit-frame-pointer
else
CFLAGS   += -O2
endif
LDLIBS   := -ljansson -lm -lpthread

# Filled by the fragments.
LIB_SRCS     :=   # sources of libmoecard.a (host engine, kernels, drivers, board code)
TEST_SRCS    :=   # single-file test programs (cmocka or plain), one binary each
TEST_SCRIPTS :=   # shell/python tests, run with MOECARD=$(B)/moecard B=$(B)
BINS         :=   # programs built by `make`
ALL_EXTRA    :=   # other artifacts built by `make` (dtbs, xclbins, firmware images)
FUZZ_SRCS    :=   # libFuzzer targets (clang), each a single file defining LLVMFuzzerTestOneInput

LIB := $(B)/libmoecard.a

# Quiet build lines ("CC file"); V=1 prints the full commands.
ifeq ($(V),1)
Q :=
else
Q := @
endif

.PHONY: all test test-bins test-run run bench lint fuzz deps clean print-lib-srcs
all:

include host/host.mk
include hls/hls.mk
include firmware/firmware.mk
include drivers/drivers.mk
include board/board.mk
include bitstream/bitstream.mk
include tools/tools.mk
include tests/tests.mk

all: $(LIB) $(BINS) $(ALL_EXTRA)

LIB_OBJS  := $(patsubst %.c,$(B)/obj/%.o,$(LIB_SRCS))
TEST_BINS := $(patsubst %.c,$(B)/t/%,$(TEST_SRCS))

$(B)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC      $<")
	$(Q)$(CC) $(CPPFLAGS) $(CFLAGS) $(CFLAGS_$(notdir $*)) -MMD -MP -c $< -o $@

$(LIB): $(LIB_OBJS)
	@mkdir -p $(dir $@)
	$(Q)rm -f $@ && ar rcs $@ $^

$(B)/t/%: %.c $(LIB)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(CPPFLAGS) $(CFLAGS) -MMD -MP $< -o $@ $(LDFLAGS) $(LIB) -lcmocka $(LDLIBS)

-include $(LIB_OBJS:.o=.d) $(TEST_BINS:=.d)

test-bins: $(LIB) $(BINS) $(TEST_BINS) $(ALL_EXTRA)

# Runs every test program and script of variant $(B), TEST_JOBS at a time (env
# MOECARD_TEST_JOBS, default 2); writes $(B)/test-summary. One test: see docs/testing.md.
TEST_JOBS ?= $(or $(MOECARD_TEST_JOBS),2)
test-run: test-bins
	@MOECARD=$(B)/moecard B=$(B) SAN=$(SAN) PYTHON=$(PYTHON) \
	  tests/run.sh -j $(TEST_JOBS) $(B) $(TEST_BINS) -- $(TEST_SCRIPTS)

# The whole suite: release build, then the ASan+UBSan build, then a fuzz smoke pass (each
# libFuzzer target FUZZ_RUNS inputs from a fixed seed), one final line
# `N passed, N failed, N skipped`.
FUZZ_RUNS ?= 20000
test:
	@tests/deps.sh --check
	@$(MAKE) --no-print-directory test-run
	@$(MAKE) --no-print-directory B=build/asan SAN=1 test-run
	@echo "== fuzz smoke: every libFuzzer target, $(FUZZ_RUNS) inputs from seed 1"
	@FUZZ_RUNS=$(FUZZ_RUNS) FUZZ_SUMMARY=build/fuzz/test-summary tests/fuzz.sh $(FUZZ_SRCS) || true
	@tests/summary.sh build build/asan build/fuzz

run:
	@tests/deps.sh --check
	@$(MAKE) --no-print-directory all
	@tests/make_run.sh $(B)

bench: all
	@tests/make_bench.sh $(B)

deps:
	@tests/deps.sh

# clang-format, cppcheck and clang-tidy; fails on any finding (docs/testing.md)
lint:
	@tests/lint.sh

fuzz:
	@tests/fuzz.sh $(FUZZ_SRCS)

clean:
	rm -rf build

# Fuzz targets also build as ordinary test programs with tests/fuzz_replay.c: they replay their
# seed corpus (<dir>/corpus/<name>/) plus deterministic mutations of it, under ASan in `make test`.
FUZZ_BINS := $(patsubst %.c,$(B)/fz/%,$(FUZZ_SRCS))
$(B)/fz/%: %.c tests/fuzz_replay.c $(LIB)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(CPPFLAGS) $(CFLAGS) -DFUZZ_CORPUS='"$(dir $*)corpus/$(notdir $*)"' $< tests/fuzz_replay.c -o $@ $(LDFLAGS) $(LIB) $(LDLIBS)
test-bins: $(FUZZ_BINS)
TEST_BINS += $(FUZZ_BINS)
print-lib-srcs:
	@echo $(filter-out $(FUZZ_EXCLUDE),$(LIB_SRCS))
