# firmware/: the card firmware (issue 4). See firmware/README.md.
# The portable core (kernel, tasks, command decoder) and the host port (port/sim) go into
# libmoecard.a so the emulated card and the tests run the same source the card images run.
FW_CORE_SRCS := firmware/fw.c firmware/fw_cmd.c firmware/kernel/rtos.c
LIB_SRCS     += $(FW_CORE_SRCS) firmware/port/sim/sim_card.c
LIB_SRCS     += firmware/selftest/fw_selftest.c
TEST_SRCS    += $(wildcard firmware/tests/test_*.c)
