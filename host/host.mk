# host/: the host engine (config, safetensors, checkpoint binding, model forward, backends, CLI).
HOST_SRCS := $(filter-out host/main.c,$(wildcard host/*.c))
LIB_SRCS  += $(HOST_SRCS)
BINS      += $(B)/moecard
TEST_SRCS += $(wildcard host/tests/test_*.c)
TEST_SCRIPTS += $(wildcard host/tests/test_*.sh)
FUZZ_SRCS += $(wildcard host/fuzz/fuzz_*.c)

# SIMD kernels are compiled per ISA and chosen at run time (host/simd.h).
CFLAGS_simd_avx2   := -mavx2 -mfma -mf16c
CFLAGS_simd_avx512 := -mavx512f -mavx512bw -mavx512vl -mavx512dq -mavx512bf16 -mavx512vbmi -mfma -mf16c

$(B)/moecard: host/main.c $(LIB)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(CPPFLAGS) $(CFLAGS) -MMD -MP $< -o $@ $(LDFLAGS) $(LIB) $(LDLIBS)
-include $(B)/moecard.d
LDLIBS += -lpcre2-8 -lfdt
