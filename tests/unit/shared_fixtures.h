// Unit tests' access to the ../shared fixtures: their folder ($LLMS_SHARED_FIXTURES when set, else the path
// compiled in as LLMS_SHARED_FIXTURES) and LLMS_SHARED_FIXTURE_OR_SKIP, the one place that decides what a
// missing fixture does: the test is skipped, or fails when LLMS_REQUIRE_FIXTURES=1 (set by .ci/run, so CI
// cannot pass by skipping what it should have checked). Mirrors tests/parity/conftest.py's shared_path.
#pragma once

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <string>

namespace llms_test {

inline std::filesystem::path shared_fixtures_dir() {
  const char* env = std::getenv("LLMS_SHARED_FIXTURES");
  return env && *env ? std::filesystem::path(env) : std::filesystem::path(LLMS_SHARED_FIXTURES);
}

inline bool fixtures_required() {
  const char* v = std::getenv("LLMS_REQUIRE_FIXTURES");
  return v && *v && std::string(v) != "0";
}

}  // namespace llms_test

// Ends the current test unless `file` exists: a skip, or a failure under LLMS_REQUIRE_FIXTURES=1.
#define LLMS_SHARED_FIXTURE_OR_SKIP(file)                                                                    \
  do {                                                                                                       \
    const std::filesystem::path llms_fixture_path_ = (file);                                                 \
    if (!std::filesystem::exists(llms_fixture_path_)) {                                                      \
      if (::llms_test::fixtures_required())                                                                  \
        FAIL() << "shared fixture " << llms_fixture_path_ << " not found; LLMS_REQUIRE_FIXTURES=1 makes this " \
               << "a failure (the fixtures live beside the repository, ../shared/fixtures)";                 \
      GTEST_SKIP() << "shared fixture " << llms_fixture_path_ << " not found";                               \
    }                                                                                                        \
  } while (0)
