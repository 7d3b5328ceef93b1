# tests/: cross-cutting tests (golden numpy reference, end-to-end CLI scripts, unit programs such
# as the allocation-failure countdown). See docs/testing.md.
TEST_SRCS    += $(wildcard tests/unit/test_*.c)
TEST_SCRIPTS += $(wildcard tests/golden/test_*.sh) $(wildcard tests/e2e/test_*.sh)

# test_alloc_fail: every allocation of the library goes through the test's countdown hook
ALLOC_WRAP := malloc calloc realloc strdup strndup posix_memalign aligned_alloc
$(B)/t/tests/unit/test_alloc_fail: LDFLAGS += $(foreach f,$(ALLOC_WRAP),-Wl,--wrap=$(f))
