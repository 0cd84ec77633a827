// Platform facts (what this machine and this libtorch build offer) and the device/dtype policy.
// probe_platform() is the only code that asks the hardware; choose_device() is a pure function of the facts,
// so the policy is unit-tested for machines we do not have (GH200, Apple Silicon, older CUDA GPUs).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json_fwd.hpp>

namespace llmstudio::platform {

struct CudaDeviceFacts {
  int index = 0;
  std::string name;
  std::int64_t total_memory_bytes = 0;
  int cc_major = 0;  // compute capability
  int cc_minor = 0;
};

struct PlatformFacts {
  std::string os;    // "linux", "macos", "windows", "unknown"
  std::string arch;  // normalised: "x86_64", "aarch64" (macOS "arm64" is reported as aarch64), else as uname says
  std::string torch_version;
  std::string cuda_compiled_version;  // CUDA version libtorch was built with, "" when a CPU/MPS build
  std::string cuda_driver_version;    // "" when no driver
  bool cuda_built = false;
  std::vector<CudaDeviceFacts> cuda_devices;
  bool mps_built = false;      // libtorch has the MPS backend (macOS builds)
  bool mps_available = false;  // and an MPS device is usable now
  int cpu_threads = 1;         // intra-op threads libtorch uses
  int cpu_cores = 1;           // logical CPUs
  std::int64_t host_memory_bytes = 0;
  bool cpu_bf16 = false;       // the CPU has native bf16 instructions (avx512_bf16/amx_bf16, Arm bf16)
  bool flash_sdpa = false;     // flash-attention SDPA kernel usable on the default CUDA device
  bool efficient_sdpa = false; // memory-efficient SDPA kernel usable on the default CUDA device
  bool nccl = false;           // NCCL library loadable (multi-GPU)
};

// Ask the hardware and libtorch. Never throws for a missing backend: absence is a fact.
PlatformFacts probe_platform();

enum class DeviceKind { CPU, CUDA, MPS };

struct DeviceChoice {
  DeviceKind kind = DeviceKind::CPU;
  int index = 0;                   // CUDA device index
  std::string device;              // "cpu", "cuda:0", "mps"
  std::string dtype;               // "float32", "bfloat16", "float16"
  std::string device_name;         // e.g. "NVIDIA H100 80GB HBM3", "Apple GPU (MPS)", "CPU (16 threads)"
  std::int64_t memory_bytes = 0;   // memory of the chosen device (host memory for CPU)
  bool unified_memory = false;     // CPU and accelerator share memory (Apple Silicon, Grace Hopper)
  std::vector<std::string> notes;  // why auto skipped what it skipped, dtype reasons, warnings
};

// The request comes from --device (or LLMSTUDIO_DEVICE): "auto", "cpu", "cuda", "cuda:N", "mps".
// dtype_request: "auto", "float32"/"fp32", "bfloat16"/"bf16", "float16"/"fp16".
// An explicit request for a device that is missing is an Error naming what was found; "auto" picks
// CUDA -> MPS -> CPU and records in notes why it skipped what it skipped.
DeviceChoice choose_device(const PlatformFacts& facts, std::string_view device_request,
                           std::string_view dtype_request = "auto");

// The effective device request: the flag if given (non-empty), else $LLMSTUDIO_DEVICE, else "auto".
std::string device_request_from(std::string_view flag_value);

// Canonical dtype name ("float32", "bfloat16", "float16") for the accepted spellings; Error otherwise.
std::string canonical_dtype(std::string_view name);

// Grace Hopper-like: an aarch64 host with a Hopper (sm90) or newer NVIDIA GPU, whose memory is coherent.
bool is_grace_hopper_like(const PlatformFacts& facts, const CudaDeviceFacts& dev);

// Peak bytes libtorch allocated on a CUDA device ("cuda:N") since start or the last reset (as
// torch.cuda.max_memory_allocated); 0 for other devices.
std::int64_t peak_device_memory_bytes(const std::string& device);
void reset_peak_device_memory(const std::string& device);

// Waits for all work queued on the CUDA devices (nothing elsewhere): for profilers and timings, never in a step.
void synchronize_device();

// Kernel choice while generating: the key length grows every decode step, and cuDNN's attention (which libtorch
// prefers for bf16/fp16 on Hopper) builds an execution plan for each new shape (measured on an H100: ~39 ms a
// call vs 45 us for the flash kernel), so generation turns it off for its duration; flash / memory-efficient
// kernels need no plan. Restores the previous setting; process-wide (the server generates one request at a time).
class DecodeKernelScope {
 public:
  DecodeKernelScope();
  ~DecodeKernelScope();
  DecodeKernelScope(const DecodeKernelScope&) = delete;
  DecodeKernelScope& operator=(const DecodeKernelScope&) = delete;

 private:
  bool cudnn_sdp_ = false;
};

nlohmann::json to_json(const PlatformFacts& facts);
nlohmann::json to_json(const DeviceChoice& choice);

// Human-readable table of the facts and the choice (what `llmstudio env` prints).
std::string format_table(const PlatformFacts& facts, const DeviceChoice& choice);

}  // namespace llmstudio::platform
