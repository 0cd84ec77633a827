// The device/dtype policy: a pure function of PlatformFacts (no hardware access here).
#include <cstdlib>
#include <sstream>

#include "llmstudio/core/error.h"
#include "llmstudio/platform/platform.h"

namespace llmstudio::platform {
namespace {

std::string cuda_list(const PlatformFacts& f) {
  if (!f.cuda_built) return "this libtorch was built without CUDA";
  if (f.cuda_devices.empty()) return "libtorch has CUDA " + f.cuda_compiled_version + " but no CUDA device is visible";
  std::ostringstream os;
  os << f.cuda_devices.size() << " CUDA device(s): ";
  for (size_t i = 0; i < f.cuda_devices.size(); ++i)
    os << (i ? ", " : "") << "cuda:" << f.cuda_devices[i].index << " " << f.cuda_devices[i].name;
  return os.str();
}

std::string found_summary(const PlatformFacts& f) {
  std::string s = "found: " + cuda_list(f) + "; ";
  s += f.mps_available ? "MPS available" : (f.mps_built ? "MPS built but not available" : "no MPS");
  s += "; CPU (" + std::to_string(f.cpu_threads) + " threads)";
  return s;
}

void choose_dtype(const PlatformFacts& f, DeviceChoice& c, std::string_view dtype_request) {
  std::string req = std::string(dtype_request).empty() ? "auto" : std::string(dtype_request);
  if (req == "auto") {
    if (c.kind == DeviceKind::CUDA) {
      const auto& d = f.cuda_devices.at(static_cast<size_t>(c.index));
      if (d.cc_major >= 8) {
        c.dtype = "bfloat16";
        c.notes.push_back("dtype auto: bfloat16 (sm" + std::to_string(d.cc_major) + std::to_string(d.cc_minor) +
                          " has native bf16)");
      } else {
        c.dtype = "float16";
        c.notes.push_back("dtype auto: float16 (sm" + std::to_string(d.cc_major) + std::to_string(d.cc_minor) +
                          " has no native bf16; training uses loss scaling)");
      }
    } else if (c.kind == DeviceKind::MPS) {
      c.dtype = "bfloat16";
      c.notes.push_back("dtype auto: bfloat16 on MPS");
    } else {
      c.dtype = "float32";
      c.notes.push_back("dtype auto: float32 on CPU");
    }
    return;
  }
  c.dtype = canonical_dtype(req);
  if (c.kind == DeviceKind::CUDA && c.dtype == "bfloat16") {
    const auto& d = f.cuda_devices.at(static_cast<size_t>(c.index));
    LLMS_CHECK(d.cc_major >= 8, "dtype bfloat16 requested but ", d.name, " (sm", d.cc_major, d.cc_minor,
               ") has no native bf16; use --dtype float16 or float32");
  }
  if (c.kind == DeviceKind::CPU && c.dtype != "float32")
    c.notes.push_back("dtype " + c.dtype + " on CPU: supported but usually slower than float32" +
                      (c.dtype == "bfloat16" && f.cpu_bf16 ? "" : " (this CPU has no native bf16)"));
}

void fill_cuda(const PlatformFacts& f, DeviceChoice& c, int index) {
  const auto& d = f.cuda_devices.at(static_cast<size_t>(index));
  c.kind = DeviceKind::CUDA;
  c.index = index;
  c.device = "cuda:" + std::to_string(index);
  c.device_name = d.name;
  c.memory_bytes = d.total_memory_bytes;
  c.unified_memory = is_grace_hopper_like(f, d);
  if (c.unified_memory)
    c.notes.push_back("Grace Hopper-like system (aarch64 host + sm" + std::to_string(d.cc_major) +
                      std::to_string(d.cc_minor) + "): CPU and GPU memory are coherent");
}

void fill_mps(const PlatformFacts& f, DeviceChoice& c) {
  c.kind = DeviceKind::MPS;
  c.device = "mps";
  c.device_name = "Apple GPU (MPS)";
  c.memory_bytes = f.host_memory_bytes;  // unified memory: the GPU shares system memory
  c.unified_memory = true;
}

void fill_cpu(const PlatformFacts& f, DeviceChoice& c) {
  c.kind = DeviceKind::CPU;
  c.device = "cpu";
  c.device_name = "CPU " + f.arch + " (" + std::to_string(f.cpu_threads) + " threads)";
  c.memory_bytes = f.host_memory_bytes;
  c.unified_memory = false;
}

}  // namespace

std::string canonical_dtype(std::string_view name) {
  if (name == "float32" || name == "fp32" || name == "float") return "float32";
  if (name == "bfloat16" || name == "bf16") return "bfloat16";
  if (name == "float16" || name == "fp16" || name == "half") return "float16";
  fail("unknown dtype '", name, "'; allowed: auto, float32 (fp32), bfloat16 (bf16), float16 (fp16)");
}

bool is_grace_hopper_like(const PlatformFacts& facts, const CudaDeviceFacts& dev) {
  return facts.arch == "aarch64" && facts.os == "linux" && dev.cc_major >= 9;
}

std::string device_request_from(std::string_view flag_value) {
  if (!flag_value.empty()) return std::string(flag_value);
  if (const char* env = std::getenv("LLMSTUDIO_DEVICE"); env && *env) return env;
  return "auto";
}

DeviceChoice choose_device(const PlatformFacts& f, std::string_view device_request, std::string_view dtype_request) {
  DeviceChoice c;
  std::string req = device_request.empty() ? "auto" : std::string(device_request);
  if (req == "auto") {
    if (!f.cuda_devices.empty()) {
      fill_cuda(f, c, 0);
      c.notes.insert(c.notes.begin(), "device auto: picked cuda:0 (" + f.cuda_devices[0].name + ")");
    } else {
      c.notes.push_back("device auto: skipped CUDA (" + cuda_list(f) + ")");
      if (f.mps_available) {
        fill_mps(f, c);
        c.notes.push_back("device auto: picked mps");
      } else {
        c.notes.push_back(std::string("device auto: skipped MPS (") +
                          (f.mps_built ? "built but not available on this machine" : "not built into this libtorch") +
                          ")");
        fill_cpu(f, c);
        c.notes.push_back("device auto: picked cpu");
      }
    }
  } else if (req == "cpu") {
    fill_cpu(f, c);
  } else if (req == "mps") {
    LLMS_CHECK(f.mps_available, "device 'mps' requested but MPS is not available (", found_summary(f),
               "); use --device auto or cpu");
    fill_mps(f, c);
  } else if (req == "cuda" || req.rfind("cuda:", 0) == 0) {
    int index = 0;
    if (req.size() > 5) {
      std::string num = req.substr(5);
      LLMS_CHECK(!num.empty() && num.find_first_not_of("0123456789") == std::string::npos && num.size() < 4,
                 "device '", req, "' is not valid; expected cuda or cuda:N with N a device index");
      index = std::stoi(num);
    }
    LLMS_CHECK(!f.cuda_devices.empty(), "device '", req, "' requested but no CUDA device is usable (", found_summary(f),
               "); use --device auto or cpu");
    LLMS_CHECK(index < static_cast<int>(f.cuda_devices.size()), "device '", req, "' requested but only ",
               f.cuda_devices.size(), " CUDA device(s) exist (", cuda_list(f), ")");
    fill_cuda(f, c, index);
  } else {
    fail("unknown device '", req, "'; allowed: auto, cpu, cuda, cuda:N, mps (flag --device or LLMSTUDIO_DEVICE)");
  }
  choose_dtype(f, c, dtype_request);
  return c;
}

}  // namespace llmstudio::platform
