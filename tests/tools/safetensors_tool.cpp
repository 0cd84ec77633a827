// llms_safetensors_tool: drives the safetensors reader/writer for tests/parity/test_safetensors_interop.py.
//   dump PATH                 JSON {sharded, metadata, tensors: {name: {dtype, shape, hex}}} of a file/folder/index
//   copy PATH OUT [k=v...]    read PATH with our reader, write OUT with our writer (+ metadata k=v)
//   shard PATH DIR MAX_BYTES  read PATH, write DIR with save_sharded (always shards + index)
//   check PATH                exit 0 if PATH opens, else print the error and exit 1
#include <cstdio>
#include <iostream>
#include <nlohmann/json.hpp>
#include <string>

#include "llmstudio/core/error.h"
#include "llmstudio/io/safetensors.h"

using namespace llmstudio;
using namespace llmstudio::io;

namespace {

std::string hex(std::span<const std::byte> b) {
  static const char* d = "0123456789abcdef";
  std::string s;
  s.reserve(b.size() * 2);
  for (auto x : b) {
    auto v = static_cast<unsigned>(x);
    s += d[v >> 4];
    s += d[v & 15];
  }
  return s;
}

NamedTensors read_all(const SafetensorsCheckpoint& ck) {
  NamedTensors out;
  for (const auto& n : ck.names()) out.emplace_back(n, ck.tensor(n));
  return out;
}

int run(int argc, char** argv) {
  LLMS_CHECK(argc >= 3, "usage: llms_safetensors_tool dump|copy|shard|check PATH ...");
  const std::string cmd = argv[1];
  const std::filesystem::path path = argv[2];
  if (cmd == "check") {
    SafetensorsCheckpoint::open(path);
    return 0;
  }
  auto ck = SafetensorsCheckpoint::open(path);
  if (cmd == "dump") {
    nlohmann::json out;
    out["sharded"] = ck.sharded();
    out["metadata"] = ck.metadata();
    out["tensors"] = nlohmann::json::object();
    for (const auto& n : ck.names()) {
      const auto& info = ck.info(n);
      at::Tensor t = ck.tensor(n);
      LLMS_CHECK(t.scalar_type() == to_scalar_type(info.dtype), "dtype mismatch for ", n);
      LLMS_CHECK(std::vector<std::int64_t>(t.sizes().begin(), t.sizes().end()) == info.shape, "shape mismatch for ", n);
      auto bytes = std::span(static_cast<const std::byte*>(t.data_ptr()), t.nbytes());
      bool zero_copy = t.numel() == 0 || ck.file_of(n).tensor_bytes(info).data() == bytes.data();
      out["tensors"][n] = {{"dtype", dtype_name(info.dtype)}, {"shape", info.shape}, {"hex", hex(bytes)},
                           {"zero_copy", zero_copy}};
    }
    std::cout << out.dump() << "\n";
    return 0;
  }
  if (cmd == "copy") {
    LLMS_CHECK(argc >= 4, "usage: copy PATH OUT [k=v...]");
    auto md = ck.sharded() ? std::map<std::string, std::string>{} : ck.metadata();
    for (int i = 4; i < argc; ++i) {
      std::string kv = argv[i];
      auto eq = kv.find('=');
      LLMS_CHECK(eq != std::string::npos, "metadata argument must be k=v: ", kv);
      md[kv.substr(0, eq)] = kv.substr(eq + 1);
    }
    save_safetensors(argv[3], read_all(ck), md);
    return 0;
  }
  if (cmd == "shard") {
    LLMS_CHECK(argc >= 5, "usage: shard PATH DIR MAX_BYTES");
    auto res = save_sharded(argv[3], read_all(ck), std::stoull(argv[4]), ck.metadata(), false);
    nlohmann::json files = nlohmann::json::array();
    for (const auto& f : res.files) files.push_back(f.filename().string());
    std::cout << nlohmann::json{{"files", files}, {"total_size", res.total_size}}.dump() << "\n";
    return 0;
  }
  fail("unknown command '", cmd, "'");
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(argc, argv);
  } catch (const std::exception& e) {
    std::cerr << "error: " << e.what() << "\n";
    return 1;
  }
}
