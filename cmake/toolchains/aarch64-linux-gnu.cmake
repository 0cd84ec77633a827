# Cross toolchain for Linux aarch64 on a Debian/Ubuntu x86_64 host: Debian's crossbuild-essential-arm64
# (aarch64-linux-gnu-g++) and arm64 -dev packages installed via multiarch (dpkg --add-architecture arm64), so
# target headers/libraries live in /usr/include and /usr/lib/aarch64-linux-gnu. libtorch comes from an unpacked
# PyPI aarch64 torch wheel: pass -DTorch_DIR=<wheel>/torch/share/cmake/Torch (scripts/test-arm64.sh does).
# Binaries run under qemu-aarch64 (Debian qemu-user); CMAKE_CROSSCOMPILING_EMULATOR lets ctest/gtest use it.
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)
set(CMAKE_LIBRARY_ARCHITECTURE aarch64-linux-gnu)

set(CMAKE_C_COMPILER aarch64-linux-gnu-gcc)
set(CMAKE_CXX_COMPILER aarch64-linux-gnu-g++)

# Search /usr/lib/aarch64-linux-gnu (multiarch) and the cross sysroot; never the host's x86_64 libraries
# (those live in /usr/lib/x86_64-linux-gnu, which CMake only searches for CMAKE_LIBRARY_ARCHITECTURE x86_64).
# Programs (ccache, protoc...) are the host's.
set(CMAKE_FIND_ROOT_PATH /usr/aarch64-linux-gnu)
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY BOTH)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE BOTH)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE BOTH)

# libc6:arm64 (multiarch, a dependency of the arm64 -dev packages) provides /lib/ld-linux-aarch64.so.1, so
# qemu needs no -L prefix; QEMU_LD_PREFIX from the environment still wins if set.
find_program(LLMS_QEMU_AARCH64 qemu-aarch64)
if(LLMS_QEMU_AARCH64)
  set(CMAKE_CROSSCOMPILING_EMULATOR "${LLMS_QEMU_AARCH64}")
endif()
