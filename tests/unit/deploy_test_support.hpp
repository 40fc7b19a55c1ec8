// Helpers of the deployment tests (deploy_test.cpp, reaper_test.cpp): a
// private runtime dir and a stand-in for a VM's QEMU process.
#pragma once

#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/stat.h>

#include <chrono>
#include <filesystem>

#include "util/deadline.hpp"
#include "util/fs.hpp"
#include "util/process.hpp"

namespace kestrel::test_support {

// A private KESTREL_RUNTIME_DIR for one test.
class RuntimeDir {
 public:
  RuntimeDir() : dir_("/tmp", "kestrel-unit-rt-") { ::setenv("KESTREL_RUNTIME_DIR", dir_.path().c_str(), 1); }
  ~RuntimeDir() { ::unsetenv("KESTREL_RUNTIME_DIR"); }
  const std::filesystem::path& path() const { return dir_.path(); }

 private:
  TempDir dir_;
};

// A process whose command line names a QMP socket in `vm_dir`, as QEMU's does.
// It blocks reading a FIFO nobody writes, and never forks: a forked child
// shares the command line until it execs, and would be found too.
inline Child fake_qemu(const std::filesystem::path& vm_dir) {
  std::filesystem::create_directories(vm_dir);
  std::filesystem::path fifo = vm_dir / "fifo";
  if (!std::filesystem::exists(fifo)) {
    EXPECT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  }
  SpawnOptions o;
  o.argv = {"/bin/sh",     "-c",   "read x <> \"$0\"",
            fifo.string(), "-qmp", "unix:" + (vm_dir / "qmp.sock").string() + ",server=on,wait=off"};
  return Child::spawn(o);
}

inline bool alive(Child& c) { return !c.wait(Deadline::after(std::chrono::milliseconds(0))).has_value(); }

}  // namespace kestrel::test_support
