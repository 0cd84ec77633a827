# What `pip install .` (scikit-build-core, pyproject.toml) installs, in the install component "wheel":
#   site-packages/llmstudio_native/bin/llmstudio   the program (stripped)
#   site-packages/llmstudio_native/_build_info.py  the torch/pyarrow versions it was compiled against
# plus the Python package python/llmstudio_native (the `llmstudio` console script: launcher.py).
#
# Finding libtorch at run time: the launcher puts the lib folders of the torch/pyarrow that *Python* imports in
# this environment on LD_LIBRARY_PATH (DYLD_LIBRARY_PATH on macOS) and execs the binary; that works wherever
# the packages are (venv, --system-site-packages, .pth, user site). The RPATH below is the fallback for running
# the binary directly: torch and pyarrow next to llmstudio_native in the same site-packages.
if(APPLE)
  set(_origin "@loader_path")
else()
  set(_origin "$ORIGIN")
endif()
set(_wheel_rpath "${_origin}/../../torch/lib")
set(LLMS_WHEEL_PYARROW_VERSION "")
set(LLMS_WHEEL_TORCH_CUDA False)
if(TARGET torch_cuda)
  set(LLMS_WHEEL_TORCH_CUDA True)
endif()
if(LLMS_WITH_PARQUET)
  list(APPEND _wheel_rpath "${_origin}/../../pyarrow")
  set(LLMS_WHEEL_PYARROW_VERSION "${LLMS_ARROW_VERSION}")
endif()
set_target_properties(llmstudio_cli PROPERTIES INSTALL_RPATH "${_wheel_rpath}")

install(TARGETS llmstudio_cli RUNTIME DESTINATION llmstudio_native/bin COMPONENT wheel)

# Versions the launcher checks before exec: libtorch's C++ ABI differs between torch releases, and the Arrow
# libraries are named by major version (libarrow.so.2600), so a different torch/pyarrow gives a clear message
# instead of an undefined-symbol crash.
file(WRITE "${CMAKE_BINARY_DIR}/wheel/_build_info.py.in" [=[
"""Written by cmake/Wheel.cmake when the wheel was built."""
LLMS_VERSION = "@PROJECT_VERSION@"
TORCH_VERSION = "@LLMS_TORCH_VERSION@"
TORCH_CUDA = @LLMS_WHEEL_TORCH_CUDA@  # linked libtorch_cuda: needs a CUDA build of torch
PYARROW_VERSION = "@LLMS_WHEEL_PYARROW_VERSION@"  # "" when built without Parquet support
]=])
configure_file("${CMAKE_BINARY_DIR}/wheel/_build_info.py.in" "${CMAKE_BINARY_DIR}/wheel/_build_info.py" @ONLY)
install(FILES "${CMAKE_BINARY_DIR}/wheel/_build_info.py" DESTINATION llmstudio_native COMPONENT wheel)
message(STATUS "Wheel: llmstudio_native/bin/llmstudio against torch ${LLMS_TORCH_VERSION}"
               " (pyarrow ${LLMS_WHEEL_PYARROW_VERSION}), RPATH ${_wheel_rpath}")
