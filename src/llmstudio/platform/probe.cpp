// probe_platform(): asks the OS, the CPU and libtorch what this machine offers. The only file with
// backend #ifdefs (LLMS_WITH_CUDA is set when libtorch was built with CUDA).
#include <dlfcn.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/version.h>  // TORCH_VERSION (torch 2.9 defines it here; 2.10+ forward to torch/headeronly/version.h)

#include <fstream>
#include <sstream>
#include <thread>

#include "llmstudio/platform/platform.h"

#if defined(LLMS_WITH_CUDA)
#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDACachingAllocator.h>
#include <cuda_runtime_api.h>
#endif

#if defined(__APPLE__)
#include <sys/sysctl.h>
#endif

namespace llmstudio::platform {
namespace {

std::string normalise_arch(std::string m) {
  if (m == "arm64" || m == "aarch64" || m == "armv8l") return "aarch64";
  if (m == "amd64" || m == "x86_64" || m == "x64") return "x86_64";
  return m;
}

std::string os_name(const std::string& sysname) {
  if (sysname == "Linux") return "linux";
  if (sysname == "Darwin") return "macos";
  if (sysname.rfind("MINGW", 0) == 0 || sysname.rfind("CYGWIN", 0) == 0) return "windows";
  return sysname.empty() ? "unknown" : sysname;
}

std::int64_t host_memory() {
#if defined(__APPLE__)
  std::int64_t mem = 0;
  size_t len = sizeof(mem);
  if (sysctlbyname("hw.memsize", &mem, &len, nullptr, 0) == 0) return mem;
  return 0;
#else
  long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGE_SIZE);
  return pages > 0 && page > 0 ? static_cast<std::int64_t>(pages) * page : 0;
#endif
}

bool cpu_has_bf16(const std::string& arch) {
#if defined(__APPLE__)
  std::int64_t v = 0;
  size_t len = sizeof(v);
  return arch == "aarch64" && sysctlbyname("hw.optional.arm.FEAT_BF16", &v, &len, nullptr, 0) == 0 && v != 0;
#else
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line)) {
    bool flags = line.rfind("flags", 0) == 0 || line.rfind("Features", 0) == 0;
    if (!flags) continue;
    std::istringstream words(line.substr(line.find(':') == std::string::npos ? 0 : line.find(':') + 1));
    std::string w;
    while (words >> w)
      if (w == "avx512_bf16" || w == "amx_bf16" || (arch == "aarch64" && w == "bf16")) return true;
    return false;
  }
  return false;
#endif
}

std::string version_string(int v) {  // CUDA encodes 12040 as 12.4
  if (v <= 0) return "";
  return std::to_string(v / 1000) + "." + std::to_string((v % 1000) / 10);
}

}  // namespace

PlatformFacts probe_platform() {
  PlatformFacts f;
  struct utsname u {};
  if (uname(&u) == 0) {
    f.os = os_name(u.sysname);
    f.arch = normalise_arch(u.machine);
  } else {
    f.os = "unknown";
    f.arch = "unknown";
  }
  f.torch_version = TORCH_VERSION;
  f.cpu_threads = at::get_num_threads();
  f.cpu_cores = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  f.host_memory_bytes = host_memory();
  f.cpu_bf16 = cpu_has_bf16(f.arch);

#if defined(LLMS_WITH_CUDA)
  f.cuda_built = true;
  f.cuda_compiled_version = version_string(CUDART_VERSION);
  int driver = 0;
  if (cudaDriverGetVersion(&driver) == cudaSuccess) f.cuda_driver_version = version_string(driver);
  if (at::hasCUDA()) {
    int n = static_cast<int>(at::cuda::device_count());
    for (int i = 0; i < n; ++i) {
      const cudaDeviceProp* p = at::cuda::getDeviceProperties(static_cast<c10::DeviceIndex>(i));
      f.cuda_devices.push_back({i, p->name, static_cast<std::int64_t>(p->totalGlobalMem), p->major, p->minor});
    }
  }
  if (!f.cuda_devices.empty()) {
    const auto& d = f.cuda_devices.front();
    // Flash attention kernels in libtorch need sm80+; the memory-efficient ones sm50+.
    f.flash_sdpa = d.cc_major >= 8 && at::globalContext().userEnabledFlashSDP();
    f.efficient_sdpa = d.cc_major >= 5 && at::globalContext().userEnabledMemEfficientSDP();
    void* nccl = dlopen("libnccl.so.2", RTLD_LAZY | RTLD_NOLOAD);
    if (!nccl) nccl = dlopen("libnccl.so.2", RTLD_LAZY);
    f.nccl = nccl != nullptr;
  }
#endif
  f.mps_built = f.os == "macos";
  f.mps_available = at::hasMPS();
  return f;
}

std::int64_t peak_device_memory_bytes(const std::string& device) {
#if defined(LLMS_WITH_CUDA)
  const at::Device d(device);
  if (d.is_cuda() && at::hasCUDA()) {
    auto stats = c10::cuda::CUDACachingAllocator::getDeviceStats(d.has_index() ? d.index() : 0);
    return stats.allocated_bytes[0].peak;
  }
#endif
  (void)device;
  return 0;
}

void reset_peak_device_memory(const std::string& device) {
#if defined(LLMS_WITH_CUDA)
  const at::Device d(device);
  if (d.is_cuda() && at::hasCUDA()) c10::cuda::CUDACachingAllocator::resetPeakStats(d.has_index() ? d.index() : 0);
#endif
  (void)device;
}

void synchronize_device() {
#if defined(LLMS_WITH_CUDA)
  if (at::hasCUDA()) c10::cuda::device_synchronize();
#endif
}

DecodeKernelScope::DecodeKernelScope() : cudnn_sdp_(at::globalContext().userEnabledCuDNNSDP()) {
  at::globalContext().setSDPUseCuDNN(false);
}

DecodeKernelScope::~DecodeKernelScope() { at::globalContext().setSDPUseCuDNN(cudnn_sdp_); }

}  // namespace llmstudio::platform
