# host/: the host side of moecard, one folder per layer of the design (see docs/architecture.md):
#   load/ config.json, safetensors, checkpoint binding   text/ tokenizer, chat template
#   model/ the host engine's forward pass, router, SIMD kernels, thread pool
#   engine/ the engine interface (host engine or card scheduler)   decode/ token loop, sampling, MTP
#   sched/ the card scheduler and the expert cache   backend/ card backends (ref, emu, xrt)
#   tools/ the test-checkpoint writer   util/ errors, .npy   prof/ the latency profiler
#   cli/ the moecard command line
HOST_DIRS := load text model engine decode sched backend tools util serve prof cli
HOST_SRCS := $(filter-out host/cli/main.c,$(foreach d,$(HOST_DIRS),$(wildcard host/$(d)/*.c)))
LIB_SRCS  += $(HOST_SRCS)
BINS      += $(B)/moecard
TEST_SRCS += $(wildcard host/tests/test_*.c)
TEST_SCRIPTS += $(wildcard host/tests/test_*.sh)
FUZZ_SRCS += $(wildcard host/fuzz/fuzz_*.c)

# SIMD kernels are compiled per ISA and chosen at run time (host/model/kernels.h).
CFLAGS_simd_avx2   := -mavx2 -mfma -mf16c
# (only what kern_isa_by_name checks for: the compiler may use any enabled extension)
CFLAGS_simd_avx512 := -mavx512f -mavx512bw -mavx512vl -mavx512dq -mfma -mf16c
CFLAGS_simd_avx512bf16 := $(CFLAGS_simd_avx512) -mavx512bf16 -mavx512vbmi -mavx512vnni

# `moecard --version` prints the version, the commit and the flags of this build.
MOECARD_VERSION := 0.13
MOECARD_COMMIT  := $(shell git describe --always --dirty 2>/dev/null || echo unknown)
$(B)/moecard: host/cli/main.c $(LIB)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(CPPFLAGS) $(CFLAGS) -DMOECARD_VERSION='"$(MOECARD_VERSION)"' \
	  -DMOECARD_COMMIT='"$(MOECARD_COMMIT)"' -DMOECARD_CFLAGS='"$(CC) $(strip $(CFLAGS))"' \
	  -MMD -MP $< -o $@ $(LDFLAGS) $(LIB) $(LDLIBS)
-include $(B)/moecard.d

# the man page, from the program's own --help of every command (tools/man.sh)
$(B)/moecard.1: $(B)/moecard tools/man.sh
	@$(if $(Q),echo "  MAN     $@")
	$(Q)tools/man.sh $(B)/moecard >$@.part && mv $@.part $@
ALL_EXTRA += $(B)/moecard.1
LDLIBS += -lpcre2-8 -lfdt -ledit -lmicrohttpd
