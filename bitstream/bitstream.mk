# bitstream/: v++ link configs and metadata xclbins generated from board/*.dts (see README.md).
# `make` builds $(B)/bitstream/gen and, per card, $(B)/bitstream/<card>/connectivity.cfg and
# $(B)/bitstream/<card>.xclbin (metadata only). `make xclbin TARGET=hw|hw_emu PLATFORM=<xpfm>
# [BOARD=u55c]` links the real bitstream with v++ and stops with one message when v++ is absent.
BITSTREAM_LIB  := bitstream/kernels.c bitstream/cfg.c bitstream/xclbin.c
LIB_SRCS       += $(BITSTREAM_LIB)
BITSTREAM_CARDS := $(patsubst board/%.dts,%,$(wildcard board/*.dts))
BITSTREAM_CFGS := $(patsubst %,$(B)/bitstream/%/connectivity.cfg,$(BITSTREAM_CARDS))
BITSTREAM_XCLBINS := $(patsubst %,$(B)/bitstream/%.xclbin,$(BITSTREAM_CARDS))
ALL_EXTRA      += $(B)/bitstream/gen $(BITSTREAM_CFGS) $(BITSTREAM_XCLBINS)
TEST_SRCS      += $(wildcard bitstream/tests/test_*.c)
TEST_SCRIPTS   += $(wildcard bitstream/tests/test_*.sh)

$(B)/bitstream/gen: bitstream/gen.c $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) -MMD -MP $< -o $@ $(LDFLAGS) $(LIB) $(LDLIBS)
-include $(B)/bitstream/gen.d

$(B)/bitstream/%/connectivity.cfg: $(B)/board/%.dtb $(B)/bitstream/gen
	@mkdir -p $(dir $@)
	$(B)/bitstream/gen cfg $< $@

$(B)/bitstream/%.xclbin: $(B)/board/%.dtb $(B)/bitstream/gen
	@mkdir -p $(dir $@)
	$(B)/bitstream/gen xclbin $< $@

# Real bitstream: needs Vitis (v++) and a platform. Never a prerequisite of `make test`.
TARGET ?= hw
BOARD  ?= u55c
VPP    ?= v++
.PHONY: xclbin
xclbin: $(B)/bitstream/$(BOARD)/connectivity.cfg $(B)/bitstream/gen
	@command -v $(VPP) >/dev/null 2>&1 || { echo "make xclbin: $(VPP) not found; install Vitis and source settings64.sh (TARGET=$(TARGET) BOARD=$(BOARD))"; exit 1; }
	@test -n "$(PLATFORM)" || { echo "make xclbin: set PLATFORM=<platform .xpfm or name>, e.g. xilinx_u55c_gen3x16_xdma_3_202210_1"; exit 1; }
	@case "$(TARGET)" in hw|hw_emu) ;; *) echo "make xclbin: TARGET must be hw or hw_emu"; exit 1;; esac
	mkdir -p $(B)/bitstream/$(BOARD)/$(TARGET)
	rm -f $(B)/bitstream/$(BOARD)/$(TARGET)/*.xo
	$(B)/bitstream/gen kernels $(B)/board/$(BOARD).dtb $(B)/bitstream/$(BOARD)/kernels.txt
	while read -r k srcs flags; do \
	  $(VPP) -c -t $(TARGET) --platform $(PLATFORM) -k $$k -I hls/include -I . $$flags \
	    -o $(B)/bitstream/$(BOARD)/$(TARGET)/$$k.xo $$(echo $$srcs | tr , ' ') || exit 1; \
	done < $(B)/bitstream/$(BOARD)/kernels.txt
	$(VPP) -l -t $(TARGET) --platform $(PLATFORM) --config $(B)/bitstream/$(BOARD)/connectivity.cfg \
	  -o $(B)/bitstream/$(BOARD)/$(TARGET)/moecard.xclbin $(B)/bitstream/$(BOARD)/$(TARGET)/*.xo

# Hardware in the loop: backend xrt on a real card (bitstream/hil.sh). Stops with one message when
# XRT or a card is missing. Never a prerequisite of `make test`.
.PHONY: test-hil
test-hil: all $(B)/t/host/tests/test_backend_ops
	@B=$(B) MOECARD=$(B)/moecard PYTHON=$(PYTHON) bitstream/hil.sh
