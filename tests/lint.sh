#!/usr/bin/env bash
# `make lint`: clang-format in dry-run mode (reports files that differ from .clang-format),
# cppcheck, and clang-tidy on the host, kernel, driver, board and firmware sources. Prints a
# summary; exits non-zero when cppcheck or clang-tidy report errors.
set -u
srcs=$(git ls-files '*.c' '*.h' | grep -v '^tests/golden/')
echo "== clang-format (dry run)"
nfmt=0
for f in $srcs; do
  if ! clang-format --dry-run --Werror "$f" >/dev/null 2>&1; then nfmt=$((nfmt + 1)); echo "  differs: $f"; fi
done
echo "clang-format: $nfmt file(s) differ from .clang-format"
echo "== cppcheck"
cppcheck --quiet --error-exitcode=1 --std=c11 --enable=warning,portability \
  --suppress=missingIncludeSystem -I host -I hls/include -I firmware/abi -I drivers -I board \
  $(echo "$srcs" | grep '\.c$' | grep -v '^firmware/port/\(rv32\|r5\)/') ; rc1=$?
echo "== clang-tidy"
clang-tidy --quiet -checks='-*,clang-analyzer-*,-clang-analyzer-security.insecureAPI.*,bugprone-*,-bugprone-easily-swappable-parameters,-bugprone-reserved-identifier,-bugprone-narrowing-conversions,-bugprone-implicit-widening-of-multiplication-result,-bugprone-assignment-in-if-condition,-bugprone-suspicious-string-compare,-bugprone-not-null-terminated-result' \
  $(echo "$srcs" | grep '^host/.*\.c$' | grep -v simd_) -- -std=c11 -D_GNU_SOURCE -I. -Ihost -Ihls/include \
  -Ifirmware/abi -Idrivers -Iboard -isystem /usr/include/xrt 2>/dev/null | grep -E 'warning:|error:' | head -50; rc2=${PIPESTATUS[0]}
echo "lint: cppcheck exit $rc1, clang-tidy exit $rc2"
[ $rc1 = 0 ]
