/*
 * test_emu_expert_faults.c - the second of test_emu_engine.c's DMA fault sweeps under the expert
 * cache (lru with look-ahead prefetch and detached fills, host execution off: misses wait for
 * demand fills, so some faults must fail a forward cleanly), every countdown position until the
 * fault no longer fires. Its own program so that the two long sweeps run on two cores.
 */
#define EMU_TEST_EXPERT_FAULTS 1
#include "test_emu_engine.c" // NOLINT(bugprone-suspicious-include): this program is that file, built with EMU_TEST_EXPERT_FAULTS
