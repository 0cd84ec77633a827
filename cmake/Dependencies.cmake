# Third-party libraries: Debian packages, and libtorch from the pip torch wheel in .venv.
find_package(nlohmann_json 3.10 REQUIRED)
find_package(PkgConfig REQUIRED)
pkg_check_modules(PCRE2 REQUIRED IMPORTED_TARGET libpcre2-8)
# ICU (common): Unicode normalization (NFC/NFKC/...) and case mapping for the tokenizer normalizers.
pkg_check_modules(ICU REQUIRED IMPORTED_TARGET icu-uc)
find_package(Threads REQUIRED)

if(LLMS_WITH_TORCH)
  find_package(yaml-cpp REQUIRED)
  find_package(CLI11 CONFIG REQUIRED)
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
  add_compile_definitions(_GLIBCXX_USE_CXX11_ABI=${LLMS_TORCH_CXX11_ABI})
  # libtorch shared libraries live in the wheel; record their folder so binaries run without LD_LIBRARY_PATH.
  get_filename_component(LLMS_TORCH_LIBDIR "${TORCH_LIBRARY}" DIRECTORY)
  set(CMAKE_BUILD_RPATH "${LLMS_TORCH_LIBDIR}")
  set(CMAKE_INSTALL_RPATH "${LLMS_TORCH_LIBDIR}")
endif()
