// JSON and table renderings of the platform facts and the device choice (`llmstudio env`).
#include <nlohmann/json.hpp>

#include <iomanip>
#include <sstream>

#include "llmstudio/platform/platform.h"

namespace llmstudio::platform {
namespace {
std::string gib(std::int64_t bytes) {
  std::ostringstream os;
  os << std::fixed << std::setprecision(1) << static_cast<double>(bytes) / (1024.0 * 1024.0 * 1024.0) << " GiB";
  return os.str();
}
std::string yes_no(bool b) { return b ? "yes" : "no"; }
}  // namespace

nlohmann::json to_json(const PlatformFacts& f) {
  nlohmann::json devices = nlohmann::json::array();
  for (const auto& d : f.cuda_devices)
    devices.push_back({{"index", d.index},
                       {"name", d.name},
                       {"total_memory_bytes", d.total_memory_bytes},
                       {"compute_capability", std::to_string(d.cc_major) + "." + std::to_string(d.cc_minor)},
                       {"bf16", d.cc_major >= 8},
                       {"fp16", d.cc_major >= 6},
                       {"grace_hopper_like", is_grace_hopper_like(f, d)}});
  return {{"os", f.os},
          {"arch", f.arch},
          {"torch_version", f.torch_version},
          {"cuda", {{"built", f.cuda_built},
                    {"compiled_version", f.cuda_compiled_version},
                    {"driver_version", f.cuda_driver_version},
                    {"devices", devices}}},
          {"mps", {{"built", f.mps_built}, {"available", f.mps_available}}},
          {"cpu", {{"threads", f.cpu_threads}, {"cores", f.cpu_cores}, {"bf16", f.cpu_bf16},
                   {"host_memory_bytes", f.host_memory_bytes}}},
          {"sdpa", {{"flash", f.flash_sdpa}, {"efficient", f.efficient_sdpa}}},
          {"nccl", f.nccl}};
}

nlohmann::json to_json(const DeviceChoice& c) {
  return {{"device", c.device},     {"dtype", c.dtype},
          {"device_name", c.device_name}, {"memory_bytes", c.memory_bytes},
          {"unified_memory", c.unified_memory}, {"notes", c.notes}};
}

std::string format_table(const PlatformFacts& f, const DeviceChoice& c) {
  std::ostringstream os;
  auto row = [&](const std::string& k, const std::string& v) { os << "  " << std::left << std::setw(18) << k << v << "\n"; };
  os << "Platform\n";
  row("os", f.os);
  row("arch", f.arch);
  row("libtorch", f.torch_version);
  row("cpu", std::to_string(f.cpu_cores) + " cores, " + std::to_string(f.cpu_threads) + " threads, bf16 " +
                 yes_no(f.cpu_bf16) + ", " + gib(f.host_memory_bytes) + " memory");
  row("cuda", f.cuda_built ? ("built with " + f.cuda_compiled_version +
                              (f.cuda_driver_version.empty() ? ", no driver" : ", driver " + f.cuda_driver_version))
                           : "not built");
  for (const auto& d : f.cuda_devices)
    row("  cuda:" + std::to_string(d.index), d.name + ", sm" + std::to_string(d.cc_major) + std::to_string(d.cc_minor) +
                                                  ", " + gib(d.total_memory_bytes) +
                                                  (is_grace_hopper_like(f, d) ? ", Grace Hopper-like" : ""));
  row("mps", f.mps_available ? "available" : (f.mps_built ? "built, not available" : "not built"));
  row("sdpa kernels", "flash " + yes_no(f.flash_sdpa) + ", memory-efficient " + yes_no(f.efficient_sdpa));
  row("nccl", yes_no(f.nccl));
  os << "Selected\n";
  row("device", c.device + " (" + c.device_name + ")");
  row("dtype", c.dtype);
  row("memory", gib(c.memory_bytes) + (c.unified_memory ? " (unified with host)" : ""));
  for (const auto& n : c.notes) row("note", n);
  return os.str();
}

}  // namespace llmstudio::platform
