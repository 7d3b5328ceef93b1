# board/: card device trees (board/*.dts -> $(B)/board/*.dtb with dtc), the libfdt parser
# (board.c -> libmoecard.a), its tests (bad-*.dts with expected errors, unit tests) and fuzz target.
# See board/README.md and board/bindings/.
BOARD_DTS   := $(wildcard board/*.dts)
BOARD_DTBS  := $(patsubst board/%.dts,$(B)/board/%.dtb,$(BOARD_DTS))
LIB_SRCS    += board/board.c board/board_res.c
ALL_EXTRA   += $(BOARD_DTBS)
TEST_SRCS   += $(wildcard board/tests/test_*.c)
TEST_SCRIPTS += $(wildcard board/tests/test_*.sh)
FUZZ_SRCS   += $(wildcard board/fuzz/fuzz_*.c)
DTC         ?= dtc

$(B)/board/%.dtb: board/%.dts
	@mkdir -p $(dir $@)
	$(DTC) -q -I dts -O dtb -o $@ $<

# The host xrt control path (host/xrt_*.c) loads XRT with dlopen at run time, so nothing links
# against XRT; its headers live in a subdirectory. The libFuzzer build (tests/fuzz.sh) compiles the
# library sources without these flags, so it skips those files.
XRT_INC     ?= /usr/include/xrt
CFLAGS_xrt_dev := -isystem $(XRT_INC)
FUZZ_EXCLUDE += host/backend/xrt_dev.c
