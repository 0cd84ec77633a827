#!/usr/bin/env bash
# Prepares .device/ (git-ignored) for the GPU machine, which has CUDA torch, nvcc, cmake and ninja but none of our
# C/C++ -dev packages and no package access: headers and static libraries of PCRE2, ICU, yaml-cpp, nlohmann-json
# and CLI11 copied from this Debian machine's packages (make setup-dev installs them), plus the tokenizers the GPU
# benchmark uses. scripts/gpu-build.sh configures with CMAKE_PREFIX_PATH=.device/prefix. Carry `.device` in the
# device tool's call. About 45 MB.
set -euo pipefail
cd "$(dirname "$0")/.."
P=.device/prefix
LIB=/usr/lib/$(gcc -print-multiarch)
SHARED=${LLMS_SHARED_FIXTURES:-../shared/fixtures}
rm -rf .device && mkdir -p "$P/include" "$P/lib/cmake/yaml-cpp" "$P/share/cmake"
cp -r /usr/include/pcre2.h /usr/include/unicode /usr/include/yaml-cpp /usr/include/nlohmann /usr/include/CLI "$P/include/"
cp "$LIB/libpcre2-8.a" "$LIB/libicuuc.a" "$LIB/libicudata.a" "$LIB/libyaml-cpp.a" "$P/lib/"
cp -r /usr/share/cmake/nlohmann_json "$P/share/cmake/"
# yaml-cpp's own CMake config names the shared library; this one imports the static archive.
cat > "$P/lib/cmake/yaml-cpp/yaml-cpp-config.cmake" <<'CFG'
get_filename_component(_yaml_prefix "${CMAKE_CURRENT_LIST_DIR}/../../.." ABSOLUTE)
if(NOT TARGET yaml-cpp)
  add_library(yaml-cpp STATIC IMPORTED)
  set_target_properties(yaml-cpp PROPERTIES IMPORTED_LOCATION "${_yaml_prefix}/lib/libyaml-cpp.a"
                        INTERFACE_INCLUDE_DIRECTORIES "${_yaml_prefix}/include")
endif()
set(yaml-cpp_FOUND TRUE)
CFG
for t in llama3 gpt2; do
  mkdir -p ".device/$t" && cp "$SHARED/tokenizers/$t/"* ".device/$t/"
done
du -sh .device
