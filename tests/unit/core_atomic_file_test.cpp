// Atomic writes: the target appears whole or not at all; a failed write leaves the old content.
#include <gtest/gtest.h>

#include <filesystem>

#include "llmstudio/core/error.h"
#include "llmstudio/io/atomic_file.h"

namespace fs = std::filesystem;
using namespace llmstudio;

TEST(AtomicFile, WritesAndReplaces) {
  fs::path dir = fs::temp_directory_path() / "llms_atomic_test";
  fs::remove_all(dir);
  fs::create_directories(dir);
  io::write_file_atomic(dir / "a.txt", "first");
  EXPECT_EQ(io::read_file(dir / "a.txt"), "first");
  io::write_file_atomic(dir / "a.txt", "second");
  EXPECT_EQ(io::read_file(dir / "a.txt"), "second");
  EXPECT_EQ(std::distance(fs::directory_iterator(dir), fs::directory_iterator{}), 1);
}

TEST(AtomicFile, AbandonedWriteKeepsOldContentAndLeavesNoTemp) {
  fs::path dir = fs::temp_directory_path() / "llms_atomic_test2";
  fs::remove_all(dir);
  fs::create_directories(dir);
  io::write_file_atomic(dir / "a.txt", "old");
  try {
    io::AtomicFile f(dir / "a.txt");
    f.write("partial");
    throw Error("simulated crash");
  } catch (const Error&) {
  }
  EXPECT_EQ(io::read_file(dir / "a.txt"), "old");
  EXPECT_EQ(std::distance(fs::directory_iterator(dir), fs::directory_iterator{}), 1);
}

TEST(AtomicFile, MissingFolderIsAClearError) {
  try {
    io::write_file_atomic("/nonexistent-dir-llms/x.txt", "x");
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("does not exist"), std::string::npos) << e.what();
  }
}
