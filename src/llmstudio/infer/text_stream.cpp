// TextStream (see text_stream.h).
#include "llmstudio/infer/text_stream.h"

namespace llmstudio::infer {
namespace {
constexpr std::string_view kReplacement = "\xEF\xBF\xBD";  // U+FFFD

bool ends_with(const std::string& s, std::string_view tail) {
  return s.size() >= tail.size() && s.compare(s.size() - tail.size(), tail.size(), tail) == 0;
}
}  // namespace

std::string TextStream::push(std::int64_t token) {
  ids_.push_back(static_cast<int32_t>(token));
  std::string full = tok_.decode(ids_, skip_special_);
  // An incomplete character decodes to U+FFFD at the end: wait for the next token.
  if (ends_with(full, kReplacement)) return {};
  if (full.size() < emitted_.size() || full.compare(0, emitted_.size(), emitted_) != 0) {
    // A decoder changed earlier text (e.g. a stripped leading space): emit nothing new until it grows again.
    return {};
  }
  std::string delta = full.substr(emitted_.size());
  emitted_ = std::move(full);
  return delta;
}

std::string TextStream::flush() {
  std::string full = tok_.decode(ids_, skip_special_);
  if (full.size() < emitted_.size() || full.compare(0, emitted_.size(), emitted_) != 0) return {};
  std::string delta = full.substr(emitted_.size());
  emitted_ = std::move(full);
  return delta;
}

}  // namespace llmstudio::infer
