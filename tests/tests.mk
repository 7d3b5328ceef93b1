# tests/: cross-cutting tests (golden numpy reference, end-to-end CLI scripts).
TEST_SRCS    += $(wildcard tests/unit/test_*.c)
TEST_SCRIPTS += $(wildcard tests/golden/test_*.sh) $(wildcard tests/e2e/test_*.sh)
