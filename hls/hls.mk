# hls/: see hls/README.md. Sources, tests and targets of this directory are added here.
HLS_KERNEL_SRCS := hls/fp8_gemm/fp8_gemm.c hls/vec_ops/vec_ops.c hls/mla_attn/mla_attn.c
LIB_SRCS  += $(HLS_KERNEL_SRCS) hls/hls_timing.c
TEST_SRCS += $(wildcard hls/tests/test_*.c)
