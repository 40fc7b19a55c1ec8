// Numbers at their limits (issue 9): deadlines from huge spans saturate
// instead of overflowing into the past, and a write that runs out of room
// reports the call that failed, not a stale errno.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cmath>
#include <csignal>
#include <functional>
#include <limits>
#include <string>
#include <variant>

#include "config/keys.hpp"
#include "test_support.hpp"
#include "util/deadline.hpp"
#include "util/error.hpp"
#include "util/fd.hpp"
#include "util/fs.hpp"
#include "util/io.hpp"
#include "vm/qemu.hpp"

namespace kestrel {
namespace {

using std::chrono::milliseconds;

TEST(Deadline, HugeSpansSaturateInsteadOfExpiring) {
  // --timeout 1e16 once became Deadline::after(1e19 ms): a signed overflow
  // into the past, and the program was killed at once with status 124.
  for (int64_t ms : {int64_t{10'000'000'000'000'000}, std::numeric_limits<int64_t>::max()}) {
    Deadline d = Deadline::after(milliseconds(ms));
    EXPECT_FALSE(d.expired()) << ms;
    EXPECT_TRUE(d.is_never()) << ms;
    EXPECT_EQ(d.poll_timeout_ms(), -1) << ms;
  }
  for (double s : {9e12, 1e16, 1e300, HUGE_VAL}) EXPECT_FALSE(Deadline::after_seconds(s).expired()) << s;
  for (double s : {1e16, 1e300, HUGE_VAL}) EXPECT_TRUE(Deadline::after_seconds(s).is_never()) << s;
  // A long but representable span is kept as it is.
  Deadline year = Deadline::after_seconds(365.0 * 86400);
  EXPECT_FALSE(year.is_never());
  EXPECT_EQ(year.poll_timeout_ms(), std::numeric_limits<int>::max());
  EXPECT_GT(Deadline::after_seconds(0.0005).poll_timeout_ms(), 0);  // rounded up, not down to now
}

TEST(Deadline, ZeroNegativeAndNanAreNow) {
  for (double s : {0.0, -1.0, -1e300, -HUGE_VAL, std::nan("")}) {
    EXPECT_TRUE(Deadline::after_seconds(s).expired()) << s;
    EXPECT_EQ(Deadline::after_seconds(s).poll_timeout_ms(), 0) << s;
  }
  EXPECT_TRUE(Deadline::after(milliseconds(std::numeric_limits<int64_t>::min())).expired());
  EXPECT_EQ(Deadline::after(milliseconds(-5)).poll_timeout_ms(), 0);
}

std::string error_of(const std::function<void()>& f) { return test::error_message(f); }

TEST(Io, FullDeviceSaysNoSpaceLeft) {
  UniqueFd full(::open("/dev/full", O_WRONLY | O_CLOEXEC));
  ASSERT_TRUE(full);
  std::string message = error_of([&] { write_all(full.get(), "data", "/dev/full"); });
  EXPECT_NE(message.find("No space left on device"), std::string::npos) << message;
  EXPECT_NE(message.find("/dev/full"), std::string::npos) << message;
  EXPECT_EQ(try_write_all(full.get(), ""), 0);
}

// Lowers RLIMIT_FSIZE (writes past it are short, then fail with EFBIG, as a
// full disk makes them short, then ENOSPC) and ignores SIGXFSZ, until dropped.
class FileSizeLimit {
 public:
  explicit FileSizeLimit(rlim_t bytes) {
    ::getrlimit(RLIMIT_FSIZE, &old_);
    struct rlimit lower = {bytes, old_.rlim_max};
    old_handler_ = std::signal(SIGXFSZ, SIG_IGN);
    ::setrlimit(RLIMIT_FSIZE, &lower);
  }
  ~FileSizeLimit() {
    ::setrlimit(RLIMIT_FSIZE, &old_);
    std::signal(SIGXFSZ, old_handler_);
  }
  FileSizeLimit(const FileSizeLimit&) = delete;
  FileSizeLimit& operator=(const FileSizeLimit&) = delete;

 private:
  struct rlimit old_ {};
  void (*old_handler_)(int) = SIG_DFL;
};

TEST(Fs, WriteThatRunsOutOfRoomNamesTheRealCause) {
  // A short write is not an error by itself: errno after it is stale (a
  // copy once reported a full disk as "Invalid cross-device link", left over
  // from copy_file_range). The write that fails must name its own cause.
  TempDir t("/tmp", "kestrel-fs-");
  std::string message;
  {
    FileSizeLimit limit(100'000);  // the write is cut short, then fails
    errno = EXDEV;
    message = error_of([&] { write_file_atomic(t.path() / "big", std::string(256 * 1024, 'x')); });
  }
  EXPECT_NE(message.find("File too large"), std::string::npos) << message;
  EXPECT_EQ(message.find("cross-device"), std::string::npos) << message;
  EXPECT_FALSE(std::filesystem::exists(t.path() / "big"));  // nothing half-written is published
}

// --mem 64 was accepted and then hung with an empty console log: under 96 MiB
// the Debian kernel panics unpacking the initramfs (72-88) or never prints
// (64). 128 boots cold and warm with room for a program.
TEST(Limits, MemoryBelowWhatBootsIsRejected) {
  const config::Key& memory = *config::find_key("memory");
  EXPECT_EQ(memory.min, 128);
  for (const char* bad : {"64", "96", "127"}) EXPECT_THROW(config::parse_text(memory, bad, "/"), Error) << bad;
  EXPECT_EQ(std::get<int64_t>(config::parse_text(memory, "128", "/")), 128);
}

// --cpus 64 was accepted and then hung: TCG cannot boot many more vCPUs than
// the host has CPUs within the boot timeout. KVM has no such limit.
TEST(Limits, TcgVcpusAreBoundedByHostCpus) {
  vm::VmConfig c;
  c.name = "t";
  c.accel = vm::Accel::kTcg;
  c.cpus = 8;
  EXPECT_NO_THROW(vm::check_cpus(c, 2));
  c.cpus = 9;
  std::string message = error_of([&] { vm::check_cpus(c, 2); });
  EXPECT_NE(message.find("this host has 2 CPU(s)"), std::string::npos) << message;
  EXPECT_NE(message.find("use --cpus 8 or fewer"), std::string::npos) << message;
  c.cpus = 64;
  EXPECT_NO_THROW(vm::check_cpus(c, 16));
  EXPECT_THROW(vm::check_cpus(c, 0), Error);  // an unknown count counts as 1
  c.accel = vm::Accel::kKvm;
  EXPECT_NO_THROW(vm::check_cpus(c, 2));
  EXPECT_EQ(config::find_key("cpus")->max, 64);
}

}  // namespace
}  // namespace kestrel
