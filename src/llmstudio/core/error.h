// The one exception type of the library, and the check macro that raises it.
// Messages name the file/key/tensor, what was expected and what was found, and a hint where one helps.
// Catch only at the edges (CLI main, server handlers).
#pragma once

#include <sstream>
#include <stdexcept>
#include <string>

namespace llmstudio {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& message) : std::runtime_error(message) {}
};

namespace detail {
template <typename... Args>
std::string concat(const Args&... args) {
  std::ostringstream os;
  (os << ... << args);
  return os.str();
}
}  // namespace detail

// Throws llmstudio::Error whose message is all arguments streamed together.
template <typename... Args>
[[noreturn]] void fail(const Args&... args) {
  throw Error(detail::concat(args...));
}

}  // namespace llmstudio

// LLMS_CHECK(cond, "file ", path, ": expected ", a, ", found ", b)
#define LLMS_CHECK(cond, ...)                   \
  do {                                          \
    if (!(cond)) ::llmstudio::fail(__VA_ARGS__); \
  } while (0)
