// Device/dtype policy for machines we cannot run here, as pure functions of fabricated facts,
// plus a probe of this machine (whatever it is) for internal consistency.
#include <gtest/gtest.h>

#include "llmstudio/core/error.h"
#include "llmstudio/platform/platform.h"

using namespace llmstudio;
using namespace llmstudio::platform;

namespace {

PlatformFacts linux_cpu(const std::string& arch) {
  PlatformFacts f;
  f.os = "linux";
  f.arch = arch;
  f.torch_version = "2.11.0";
  f.cpu_threads = 8;
  f.cpu_cores = 8;
  f.host_memory_bytes = 64LL << 30;
  return f;
}

PlatformFacts gh200() {
  PlatformFacts f = linux_cpu("aarch64");
  f.cuda_built = true;
  f.cuda_compiled_version = "13.0";
  f.cuda_devices.push_back({0, "NVIDIA GH200 480GB", 96LL << 30, 9, 0});
  return f;
}

PlatformFacts apple_silicon() {
  PlatformFacts f;
  f.os = "macos";
  f.arch = "aarch64";
  f.mps_built = true;
  f.mps_available = true;
  f.cpu_threads = 10;
  f.host_memory_bytes = 32LL << 30;
  return f;
}

PlatformFacts x86_t4() {
  PlatformFacts f = linux_cpu("x86_64");
  f.cuda_built = true;
  f.cuda_compiled_version = "12.8";
  f.cuda_devices.push_back({0, "Tesla T4", 15LL << 30, 7, 5});
  return f;
}

bool has_note(const DeviceChoice& c, const std::string& needle) {
  for (const auto& n : c.notes)
    if (n.find(needle) != std::string::npos) return true;
  return false;
}

}  // namespace

TEST(DevicePolicy, GraceHopperPicksCudaBf16Unified) {
  auto c = choose_device(gh200(), "auto");
  EXPECT_EQ(c.device, "cuda:0");
  EXPECT_EQ(c.dtype, "bfloat16");
  EXPECT_TRUE(c.unified_memory);
  EXPECT_TRUE(has_note(c, "Grace Hopper"));
}

TEST(DevicePolicy, H100OnX86IsNotUnified) {
  PlatformFacts f = gh200();
  f.arch = "x86_64";
  auto c = choose_device(f, "auto");
  EXPECT_EQ(c.device, "cuda:0");
  EXPECT_FALSE(c.unified_memory);
}

TEST(DevicePolicy, AppleSiliconPicksMpsBf16) {
  auto c = choose_device(apple_silicon(), "auto");
  EXPECT_EQ(c.device, "mps");
  EXPECT_EQ(c.dtype, "bfloat16");
  EXPECT_TRUE(c.unified_memory);
  EXPECT_TRUE(has_note(c, "skipped CUDA"));
}

TEST(DevicePolicy, AarchCpuOnlyFallsBackToCpuFp32AndSaysWhy) {
  auto c = choose_device(linux_cpu("aarch64"), "auto");
  EXPECT_EQ(c.device, "cpu");
  EXPECT_EQ(c.dtype, "float32");
  EXPECT_TRUE(has_note(c, "skipped CUDA (this libtorch was built without CUDA)"));
  EXPECT_TRUE(has_note(c, "skipped MPS (not built"));
}

TEST(DevicePolicy, OlderCudaGetsFp16AndRefusesBf16) {
  auto c = choose_device(x86_t4(), "auto");
  EXPECT_EQ(c.device, "cuda:0");
  EXPECT_EQ(c.dtype, "float16");
  EXPECT_THROW(choose_device(x86_t4(), "cuda", "bf16"), Error);
  EXPECT_EQ(choose_device(x86_t4(), "cuda", "fp32").dtype, "float32");
}

TEST(DevicePolicy, X86CpuOnly) {
  PlatformFacts f = linux_cpu("x86_64");
  f.cuda_built = true;  // a CUDA wheel on a machine without GPU
  f.cuda_compiled_version = "13.0";
  auto c = choose_device(f, "auto");
  EXPECT_EQ(c.device, "cpu");
  EXPECT_EQ(c.dtype, "float32");
  EXPECT_TRUE(has_note(c, "no CUDA device is visible"));
}

TEST(DevicePolicy, ExplicitMissingBackendIsAnErrorNamingWhatWasFound) {
  PlatformFacts f = linux_cpu("x86_64");
  try {
    choose_device(f, "cuda");
    FAIL() << "expected an error";
  } catch (const Error& e) {
    std::string m = e.what();
    EXPECT_NE(m.find("device 'cuda' requested"), std::string::npos) << m;
    EXPECT_NE(m.find("found:"), std::string::npos) << m;
  }
  EXPECT_THROW(choose_device(f, "mps"), Error);
  EXPECT_THROW(choose_device(apple_silicon(), "cuda:0"), Error);
  EXPECT_THROW(choose_device(gh200(), "cuda:1"), Error);
  EXPECT_THROW(choose_device(gh200(), "cuda:x"), Error);
  EXPECT_THROW(choose_device(gh200(), "tpu"), Error);
  EXPECT_THROW(choose_device(gh200(), "auto", "int3"), Error);
}

TEST(DevicePolicy, ExplicitDevicesAndIndex) {
  PlatformFacts f = gh200();
  f.cuda_devices.push_back({1, "NVIDIA H100", 80LL << 30, 9, 0});
  EXPECT_EQ(choose_device(f, "cuda:1").device, "cuda:1");
  EXPECT_EQ(choose_device(f, "cuda:1").device_name, "NVIDIA H100");
  EXPECT_EQ(choose_device(f, "cpu").device, "cpu");
  EXPECT_EQ(choose_device(f, "cpu").dtype, "float32");
}

TEST(Platform, ProbeOfThisMachineIsConsistent) {
  auto f = probe_platform();
  EXPECT_TRUE(f.arch == "x86_64" || f.arch == "aarch64") << f.arch;
  EXPECT_FALSE(f.torch_version.empty());
  EXPECT_GE(f.cpu_threads, 1);
  auto c = choose_device(f, "auto");
  if (f.cuda_devices.empty() && !f.mps_available) {
    EXPECT_EQ(c.device, "cpu");
    EXPECT_EQ(c.dtype, "float32");
  }
  EXPECT_EQ(choose_device(f, "cpu").device, "cpu");
}
