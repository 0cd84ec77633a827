# Third-party libraries: Debian packages, and libtorch from the pip torch wheel in .venv.
find_package(nlohmann_json 3.10 REQUIRED)
# PCRE2 (Debian libpcre2-dev; Homebrew pcre2 on macOS). PCRE2_ROOT may point at another prefix.
find_path(PCRE2_INCLUDE_DIR pcre2.h HINTS ${PCRE2_ROOT}/include)
find_library(PCRE2_LIBRARY NAMES pcre2-8 HINTS ${PCRE2_ROOT}/lib)
if(NOT PCRE2_INCLUDE_DIR OR NOT PCRE2_LIBRARY)
  message(FATAL_ERROR "PCRE2 (8-bit) not found: install libpcre2-dev (make setup-dev does) or set PCRE2_ROOT")
endif()
add_library(llms_pcre2 INTERFACE)
target_include_directories(llms_pcre2 INTERFACE ${PCRE2_INCLUDE_DIR})
target_link_libraries(llms_pcre2 INTERFACE ${PCRE2_LIBRARY})
target_compile_definitions(llms_pcre2 INTERFACE PCRE2_CODE_UNIT_WIDTH=8)
# ICU common (Debian libicu-dev; Homebrew icu4c on macOS: ICU_ROOT=$(brew --prefix icu4c)): Unicode
# normalization (NFC/NFKC/...), character properties and case mapping for the tokenizer.
find_path(ICU_INCLUDE_DIR unicode/unorm2.h HINTS ${ICU_ROOT}/include)
find_library(ICU_UC_LIBRARY NAMES icuuc HINTS ${ICU_ROOT}/lib)
find_library(ICU_DATA_LIBRARY NAMES icudata HINTS ${ICU_ROOT}/lib)
if(NOT ICU_INCLUDE_DIR OR NOT ICU_UC_LIBRARY OR NOT ICU_DATA_LIBRARY)
  message(FATAL_ERROR "ICU not found: install libicu-dev (make setup-dev does) or set ICU_ROOT")
endif()
add_library(llms_icu INTERFACE)
target_include_directories(llms_icu INTERFACE ${ICU_INCLUDE_DIR})
target_link_libraries(llms_icu INTERFACE ${ICU_UC_LIBRARY} ${ICU_DATA_LIBRARY} ${CMAKE_DL_LIBS})
find_package(Threads REQUIRED)

if(LLMS_WITH_TORCH AND LLMS_WITH_SERVER)
  # The studio server (src/llmstudio/server): Debian's cpp-httplib (compiled library; its pkg-config Cflags
  # define the SSL/zlib/brotli support macros, which change class layouts, so we define them the same way) and
  # SQLite (experiment/dataset metadata, WAL mode).
  find_path(HTTPLIB_INCLUDE_DIR httplib.h HINTS ${HTTPLIB_ROOT}/include)
  find_library(HTTPLIB_LIBRARY NAMES cpp-httplib HINTS ${HTTPLIB_ROOT}/lib)
  if(NOT HTTPLIB_INCLUDE_DIR OR NOT HTTPLIB_LIBRARY)
    message(FATAL_ERROR "cpp-httplib not found: install libcpp-httplib-dev (make setup-dev does) or set HTTPLIB_ROOT")
  endif()
  # Linking only; the include folder and LLMS_HTTPLIB_DEFINITIONS are set on the server sources alone.
  add_library(llms_httplib_link INTERFACE)
  target_link_libraries(llms_httplib_link INTERFACE ${HTTPLIB_LIBRARY} Threads::Threads)
  set(LLMS_HTTPLIB_DEFINITIONS CPPHTTPLIB_OPENSSL_SUPPORT CPPHTTPLIB_ZLIB_SUPPORT CPPHTTPLIB_BROTLI_SUPPORT)
  find_path(SQLITE3_INCLUDE_DIR sqlite3.h HINTS ${SQLITE3_ROOT}/include)
  find_library(SQLITE3_LIBRARY NAMES sqlite3 HINTS ${SQLITE3_ROOT}/lib)
  if(NOT SQLITE3_INCLUDE_DIR OR NOT SQLITE3_LIBRARY)
    message(FATAL_ERROR "SQLite not found: install libsqlite3-dev (make setup-dev does) or set SQLITE3_ROOT")
  endif()
  add_library(llms_sqlite3 INTERFACE)
  target_include_directories(llms_sqlite3 INTERFACE ${SQLITE3_INCLUDE_DIR})
  target_link_libraries(llms_sqlite3 INTERFACE ${SQLITE3_LIBRARY})
endif()

if(LLMS_WITH_TORCH)
  find_package(yaml-cpp REQUIRED)  # Debian libyaml-cpp-dev: experiment configs (experiment/experiment_config.cpp)
  # Parquet datasets: the Arrow/Parquet C++ libraries shipped in the pip pyarrow wheel (scripts/requirements-dev.txt).
  # ON by default when the .venv's pyarrow has its C++ headers and libraries; OFF makes .parquet files an error
  # that says how to enable it.
  # Not when cross-compiling: the host's pyarrow libraries are for the host architecture.
  set(_pyarrow_rc 1)
  if(NOT CMAKE_CROSSCOMPILING)
    execute_process(
      COMMAND "${LLMS_PYTHON}" -c "import pyarrow as pa,sys; sys.stdout.write(pa.get_include() + ';' + pa.get_library_dirs()[0] + ';' + pa.__version__)"
      OUTPUT_VARIABLE _pyarrow_info RESULT_VARIABLE _pyarrow_rc ERROR_QUIET)
  endif()
  set(_parquet_default OFF)
  if(_pyarrow_rc EQUAL 0)
    list(GET _pyarrow_info 0 LLMS_ARROW_INCLUDE_DIR)
    list(GET _pyarrow_info 1 LLMS_ARROW_LIBDIR)
    list(GET _pyarrow_info 2 LLMS_ARROW_VERSION)
    # The wheel ships only versioned names (libarrow.so.2600); link those files directly, no symlinks needed.
    file(GLOB LLMS_ARROW_LIBRARY "${LLMS_ARROW_LIBDIR}/libarrow.so.[0-9]*")
    file(GLOB LLMS_PARQUET_LIBRARY "${LLMS_ARROW_LIBDIR}/libparquet.so.[0-9]*")
    if(EXISTS "${LLMS_ARROW_INCLUDE_DIR}/parquet/arrow/reader.h" AND LLMS_ARROW_LIBRARY AND LLMS_PARQUET_LIBRARY)
      set(_parquet_default ON)
    endif()
  endif()
  option(LLMS_WITH_PARQUET "Read .parquet datasets with the Arrow C++ libraries of the pip pyarrow wheel" ${_parquet_default})
  if(LLMS_WITH_PARQUET)
    if(NOT _parquet_default)
      message(FATAL_ERROR "LLMS_WITH_PARQUET=ON but ${LLMS_PYTHON} has no pyarrow with C++ headers/libraries: "
                          "run `make setup-dev` (installs pyarrow) or configure with -DLLMS_WITH_PARQUET=OFF")
    endif()
    list(GET LLMS_ARROW_LIBRARY 0 LLMS_ARROW_LIBRARY)
    list(GET LLMS_PARQUET_LIBRARY 0 LLMS_PARQUET_LIBRARY)
    # Headers are added to data/parquet_reader.cpp alone (src/llmstudio/CMakeLists.txt). The wheel is built with the
    # C++11 ABI, as is torch's.
    add_library(llms_parquet INTERFACE)
    target_link_libraries(llms_parquet INTERFACE "${LLMS_PARQUET_LIBRARY}" "${LLMS_ARROW_LIBRARY}")
    message(STATUS "Parquet support: pyarrow ${LLMS_ARROW_VERSION} from ${LLMS_ARROW_LIBDIR}")
  else()
    message(STATUS "Parquet support: OFF (pip install pyarrow into .venv, then -DLLMS_WITH_PARQUET=ON)")
  endif()
  find_package(CLI11 CONFIG QUIET)
  if(NOT TARGET CLI11::CLI11)  # header-only; some systems ship no CMake config
    find_path(CLI11_INCLUDE_DIR CLI/CLI.hpp REQUIRED)
    add_library(CLI11::CLI11 INTERFACE IMPORTED)
    target_include_directories(CLI11::CLI11 INTERFACE ${CLI11_INCLUDE_DIR})
  endif()
  if(CMAKE_CROSSCOMPILING)
    # Cross builds (cmake/toolchains/) cannot run the target's Python: libtorch comes from an unpacked torch wheel
    # of the target architecture, -DTorch_DIR=<unpacked wheel>/torch/share/cmake/Torch (scripts/test-arm64.sh).
    if(NOT Torch_DIR OR NOT EXISTS "${Torch_DIR}/TorchConfig.cmake")
      message(FATAL_ERROR "cross-compiling: set -DTorch_DIR=<unpacked ${CMAKE_SYSTEM_PROCESSOR} torch wheel>/torch/share/cmake/Torch "
                          "(Torch_DIR='${Torch_DIR}'; scripts/test-arm64.sh fetches and unpacks one)")
    endif()
    set(LLMS_TORCH_CXX11_ABI 1)  # torch >= 2.7 wheels are built with the C++11 ABI only
    find_package(Torch REQUIRED)
    message(STATUS "libtorch ${Torch_VERSION} (${CMAKE_SYSTEM_PROCESSOR}, cross) from ${Torch_DIR} (cxx11 abi=1)")
  else()
  if(NOT EXISTS "${LLMS_PYTHON}")
    message(FATAL_ERROR "LLMS_PYTHON=${LLMS_PYTHON} not found: run `make setup-dev` first (it creates .venv with torch)")
  endif()
  execute_process(
    COMMAND "${LLMS_PYTHON}" -c "import torch,sys; sys.stdout.write(torch.utils.cmake_prefix_path + ';' + str(int(torch.compiled_with_cxx11_abi())) + ';' + torch.__version__)"
    OUTPUT_VARIABLE _torch_info RESULT_VARIABLE _torch_rc)
  if(NOT _torch_rc EQUAL 0)
    message(FATAL_ERROR "could not import torch with ${LLMS_PYTHON}: run `make setup-dev`")
  endif()
  list(GET _torch_info 0 LLMS_TORCH_PREFIX)
  list(GET _torch_info 1 LLMS_TORCH_CXX11_ABI)
  list(GET _torch_info 2 LLMS_TORCH_VERSION)
  list(APPEND CMAKE_PREFIX_PATH "${LLMS_TORCH_PREFIX}")
  message(STATUS "libtorch ${LLMS_TORCH_VERSION} from ${LLMS_TORCH_PREFIX} (cxx11 abi=${LLMS_TORCH_CXX11_ABI})")
  # The CUDA wheel's CMake config needs the CUDA toolkit (nvcc) to configure; CPU/macOS wheels do not.
  if(NOT DEFINED CMAKE_CUDA_COMPILER AND EXISTS /usr/local/cuda/bin/nvcc)
    set(CMAKE_CUDA_COMPILER /usr/local/cuda/bin/nvcc)
  endif()
  # Skip Caffe2's GPU-detection try_run (no GPU on build machines; we compile no .cu files).
  if(NOT DEFINED TORCH_CUDA_ARCH_LIST)
    set(TORCH_CUDA_ARCH_LIST "8.0;9.0")
  endif()
  set(CMAKE_CUDA_STANDARD 17)
  find_package(Torch REQUIRED)
  endif()  # CMAKE_CROSSCOMPILING
  add_compile_definitions(_GLIBCXX_USE_CXX11_ABI=${LLMS_TORCH_CXX11_ABI})
  # libtorch shared libraries live in the wheel; record their folder so binaries run without LD_LIBRARY_PATH.
  get_filename_component(LLMS_TORCH_LIBDIR "${TORCH_LIBRARY}" DIRECTORY)
  set(CMAKE_BUILD_RPATH "${LLMS_TORCH_LIBDIR}")
  set(CMAKE_INSTALL_RPATH "${LLMS_TORCH_LIBDIR}")
  if(CMAKE_CROSSCOMPILING)  # a cross linker ignores libtorch's $ORIGIN runpath to the wheel's bundled libraries
    add_link_options("LINKER:-rpath-link,${LLMS_TORCH_LIBDIR}/../../torch.libs")
  endif()
  if(LLMS_WITH_PARQUET)
    list(APPEND CMAKE_BUILD_RPATH "${LLMS_ARROW_LIBDIR}")
    list(APPEND CMAKE_INSTALL_RPATH "${LLMS_ARROW_LIBDIR}")
  endif()
endif()
