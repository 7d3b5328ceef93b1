# firmware/: the card firmware. See firmware/README.md and docs/abi.md.
# The portable core (kernel, tasks, command decoder, self-tests) and the host port (port/sim) go
# into libmoecard.a so the emulated card and the host tests run the same source as the card
# images. `make` also cross-builds the rv32 (QEMU virt) and r5 (Versal RPU) images.
FW_CORE_SRCS := firmware/fw.c firmware/fw_cmd.c firmware/kernel/rtos.c firmware/selftest/fw_selftest.c
LIB_SRCS     += $(FW_CORE_SRCS) firmware/port/sim/sim_card.c
TEST_SRCS    += $(wildcard firmware/tests/test_*.c)
TEST_SCRIPTS += $(wildcard firmware/tests/test_*.sh)
FUZZ_SRCS    += $(wildcard firmware/fuzz/fuzz_*.c)

FW_HDRS      := $(wildcard firmware/*.h firmware/abi/*.h firmware/kernel/*.h firmware/selftest/*.h)
FW_XFLAGS    := -Os -g -std=c11 -Wall -Wextra -Wshadow -Werror -ffunction-sections -fdata-sections \
                -fno-tree-loop-distribute-patterns \
                -DABI_PLAT_CARD -I. -Ifirmware/abi
FW_RV32_CC   := riscv64-unknown-elf-gcc
FW_RV32_FLAGS := -march=rv32imac -mabi=ilp32 -mcmodel=medany --specs=picolibc.specs -nostartfiles
FW_R5_CC     := arm-none-eabi-gcc
FW_R5_FLAGS  := -mcpu=cortex-r5 -mfpu=vfpv3-d16 -mfloat-abi=hard -marm --specs=nano.specs -nostartfiles

$(B)/fw/rv32/fw.elf: $(FW_CORE_SRCS) $(wildcard firmware/port/rv32/*) $(FW_HDRS)
	@mkdir -p $(dir $@)
	$(FW_RV32_CC) $(FW_RV32_FLAGS) $(FW_XFLAGS) -T firmware/port/rv32/link.ld \
	  firmware/port/rv32/crt0.S firmware/port/rv32/port.c firmware/port/rv32/main.c \
	  firmware/port/rv32/cost.c \
	  $(FW_CORE_SRCS) -o $@ -Wl,--gc-sections -Wl,--no-warn-rwx-segments

$(B)/fw/r5/fw.elf: $(FW_CORE_SRCS) $(wildcard firmware/port/r5/*) $(FW_HDRS)
	@mkdir -p $(dir $@)
	$(FW_R5_CC) $(FW_R5_FLAGS) $(FW_XFLAGS) -T firmware/port/r5/link.ld \
	  firmware/port/r5/startup.S firmware/port/r5/port.c firmware/port/r5/main.c \
	  $(FW_CORE_SRCS) -o $@ -Wl,--gc-sections -Wl,--no-warn-rwx-segments

ALL_EXTRA += $(B)/fw/rv32/fw.elf $(B)/fw/r5/fw.elf
