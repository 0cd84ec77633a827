// Fuzz target: the safetensors header parser on arbitrary file bytes. It must never crash, hang or read
// out of bounds; rejecting with llmstudio::Error is fine. For accepted inputs it also checks invariants:
// every tensor lies inside the input, and rebuilding the header (build_safetensors_header) and parsing it
// again gives the same tensors and metadata.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <span>
#include <string>
#include <vector>

#include "llmstudio/core/error.h"
#include "llmstudio/io/safetensors_header.h"

namespace {

void check(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "fuzz_safetensors_header invariant broken: %s\n", what);
    std::abort();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace llmstudio::io;
  const std::span<const std::byte> file(reinterpret_cast<const std::byte*>(data), size);
  SafetensorsHeader h;
  try {
    h = parse_safetensors_header(file, "fuzz-input");
  } catch (const llmstudio::Error&) {
    return 0;
  }
  const std::uint64_t data_size = size - h.data_section_offset();
  std::uint64_t covered = 0;
  std::vector<SafetensorsEntry> entries;
  for (const auto& t : h.tensors) {
    check(t.data_begin == covered && t.data_end >= t.data_begin && t.data_end <= data_size, "tensor ranges");
    check(t.nbytes() == t.numel() * dtype_size(t.dtype), "byte size");
    check(h.find(t.name) == &t, "name index");
    covered = t.data_end;
    entries.push_back({t.name, t.dtype, t.shape});
  }
  check(covered == data_size, "coverage");

  // Round trip through the writer's header builder.
  std::string rebuilt;
  try {
    rebuilt = build_safetensors_header(entries, h.metadata);
  } catch (const llmstudio::Error&) {
    check(false, "a parsed header could not be rebuilt");
  }
  check(rebuilt.size() % 8 == 0, "rebuilt header is padded to 8 bytes");
  rebuilt.append(reinterpret_cast<const char*>(data) + h.data_section_offset(), data_size);
  SafetensorsHeader again;
  try {
    again = parse_safetensors_header(std::as_bytes(std::span(rebuilt.data(), rebuilt.size())), "rebuilt");
  } catch (const llmstudio::Error&) {
    check(false, "a rebuilt header does not parse");
  }
  check(again.metadata == h.metadata, "metadata round trip");
  check(again.tensors.size() == h.tensors.size(), "tensor count round trip");
  for (std::size_t i = 0; i < h.tensors.size(); ++i) {
    const auto& a = h.tensors[i];
    const auto* b = again.find(a.name);
    check(b != nullptr && b->dtype == a.dtype && b->shape == a.shape && b->data_begin == a.data_begin &&
              b->data_end == a.data_end,
          "tensor round trip");
  }
  return 0;
}
