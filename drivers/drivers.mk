# drivers/: the expert DMA driver (drivers/dma.h): channel core, emul/xrt/xdma engines, bench.
# See drivers/README.md.
DRIVERS_SRCS := drivers/dma_core.c drivers/dma_emul.c drivers/dma_xdma.c drivers/dma_xrt.c drivers/dma_bench.c \
                drivers/dma_board.c
LIB_SRCS  += $(DRIVERS_SRCS)
TEST_SRCS += $(wildcard drivers/tests/test_*.c)
TEST_SCRIPTS += $(wildcard drivers/tests/test_*.sh)
BINS      += $(B)/dma_bench
FUZZ_SRCS += $(wildcard drivers/fuzz/fuzz_*.c)

# XRT headers have their own include root (Debian libxrt-dev, or Xilinx's XRT package). Without
# them dma_xrt.c builds a stub whose open fails with a clear message. XRT itself is dlopen()ed.
XRT_BO_H ?= $(firstword $(wildcard /opt/xilinx/xrt/include/xrt/xrt_bo.h /usr/include/xrt/xrt/xrt_bo.h))
CFLAGS_dma_xrt := $(if $(XRT_BO_H),-isystem $(patsubst %/xrt/xrt_bo.h,%,$(XRT_BO_H)) -DDMA_XRT_HAVE_HEADERS=1)

$(B)/dma_bench: drivers/dma_bench_main.c $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) -MMD -MP $< -o $@ $(LDFLAGS) $(LIB) $(LDLIBS)
-include $(B)/dma_bench.d
