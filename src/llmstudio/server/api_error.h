// ApiError: an llmstudio::Error that carries the HTTP status the studio answers with (400 bad input, 401 no or
// wrong token, 404 unknown id, 409 wrong state, 413 too large). Thrown by the server's services, turned into
// {"error": {"message", "code"}} at the route edge; any other llmstudio::Error from the library is a 400 (the
// request named something the library refused), anything else a 500.
#pragma once

#include <string>

#include "llmstudio/core/error.h"

namespace llmstudio::server {

class ApiError : public Error {
 public:
  ApiError(int status, const std::string& message) : Error(message), status_(status) {}
  int status() const { return status_; }

 private:
  int status_;
};

template <typename... Args>
[[noreturn]] void api_fail(int status, const Args&... args) {
  throw ApiError(status, detail::concat(args...));
}

}  // namespace llmstudio::server
