# hls/: see hls/README.md. Sources, tests and targets of this directory are added here.
HLS_KERNEL_SRCS := hls/fp8_gemm/fp8_gemm.c hls/fp8_gemv/fp8_gemv.c hls/vec_ops/vec_ops.c \
		   hls/mla_attn/mla_attn.c hls/mla_attn/mla_attn_lanes.c hls/moe_route/moe_route.c
LIB_SRCS  += $(HLS_KERNEL_SRCS) hls/hls_timing.c
TEST_SRCS += $(wildcard hls/tests/test_*.c)
TEST_SCRIPTS += $(wildcard hls/tests/test_*.sh)

# hls_bench: modeled cycles/utilization for the 671B shapes (`make bench` runs it).
BINS += $(B)/hls_bench
$(B)/hls_bench: hls/bench/hls_bench.c $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) -MMD -MP $< -o $@ $(LDFLAGS) $(LIB) $(LDLIBS)
-include $(B)/hls_bench.d

# Vitis HLS C synthesis of every kernel (optional; never a prerequisite of `make test`).
HLS_KERNELS := fp8_gemm fp8_gemv vec_ops mla_attn moe_route
.PHONY: hls-csynth
hls-csynth:
	@command -v vitis_hls >/dev/null 2>&1 || { echo "hls-csynth: vitis_hls not found in PATH; install Vitis HLS and source its settings64.sh (nothing was built)"; exit 1; }
	@for k in $(HLS_KERNELS); do vitis_hls -f hls/$$k/run_hls.tcl || exit 1; done
