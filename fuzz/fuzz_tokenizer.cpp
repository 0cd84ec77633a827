// libFuzzer target for the tokenizer: random bytes to encode() (raw, possibly invalid UTF-8) and random ids to
// decode(), on the small byte-level BPE in tests/data/tokenizer-tiny-bytelevel.json (normalizer, Split +
// ByteLevel pre-tokenizer, added tokens with lstrip/rstrip/single_word, template post-processor).
// Checks: no crash, only in-vocabulary ids, decode output is valid UTF-8, and encode is deterministic.
// LLMS_FUZZ_TOKENIZER overrides the tokenizer file. Links llmstudio_core only.
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <span>
#include <string>
#include <vector>

#include "llmstudio/core/error.h"
#include "llmstudio/tokenizer/tokenizer.h"
#include "llmstudio/tokenizer/unicode.h"

namespace {

const llmstudio::tokenizer::Tokenizer& tokenizer() {
  static const llmstudio::tokenizer::Tokenizer tok = [] {
    const char* env = std::getenv("LLMS_FUZZ_TOKENIZER");
    std::filesystem::path p = env ? std::filesystem::path(env)
                                  : std::filesystem::path(__FILE__).parent_path() / ".." / "tests" / "data" /
                                        "tokenizer-tiny-bytelevel.json";
    return llmstudio::tokenizer::Tokenizer::from_path(p);
  }();
  return tok;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const auto& tok = tokenizer();
  if (size == 0) return 0;
  const uint8_t mode = data[0];
  std::string_view rest(reinterpret_cast<const char*>(data + 1), size - 1);
  if ((mode & 1) == 0) {
    bool add_special = (mode & 2) != 0;
    auto ids = tok.encode(rest, add_special);
    for (int32_t id : ids)
      if (!tok.id_to_token(id)) std::abort();  // every produced id must exist
    if (tok.encode(rest, add_special) != ids) std::abort();
    std::string text = tok.decode(ids, (mode & 4) != 0);
    if (!llmstudio::tokenizer::unicode::is_valid_utf8(text)) std::abort();
  } else {
    std::vector<int32_t> ids(rest.size() / 2);
    for (size_t i = 0; i < ids.size(); ++i) {
      uint16_t v;
      std::memcpy(&v, rest.data() + 2 * i, 2);
      ids[i] = static_cast<int32_t>(v % (tok.vocab_size() + 16));  // some out-of-range ids too
    }
    std::string text = tok.decode(ids, (mode & 2) != 0);
    if (!llmstudio::tokenizer::unicode::is_valid_utf8(text)) std::abort();
  }
  return 0;
}
