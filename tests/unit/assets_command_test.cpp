// assets::run_streamed, the one runner for long logged steps (kernel build,
// image build): lines, tail, log, the name in messages and the stop.
#include <gtest/gtest.h>
#include <pthread.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>

#include "assets/command.hpp"
#include "test_support.hpp"
#include "util/error.hpp"
#include "util/fs.hpp"

namespace kestrel::assets {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

fs::path temp_log() {
  std::string pattern = (fs::temp_directory_path() / "kestrel-streamed-XXXXXX").string();
  int fd = ::mkstemp(pattern.data());
  EXPECT_GE(fd, 0);
  ::close(fd);
  return pattern;
}

TEST(RunStreamed, KeepsLinesTailAndLog) {
  fs::path log = temp_log();
  std::vector<std::string> seen;
  StreamedCommand c;
  c.argv = {"sh", "-c", "for i in $(seq 1 50); do echo line $i; done; echo oops >&2; printf last; exit 3"};
  c.log = log;
  c.on_line = [&](const std::string& line) { seen.push_back(line); };
  StreamedResult r = run_streamed(c);
  EXPECT_EQ(r.status, 3);
  ASSERT_EQ(seen.size(), 52u);
  EXPECT_EQ(seen[50], "oops");
  EXPECT_EQ(r.tail.size(), 40u);
  EXPECT_EQ(r.tail_text(2), "oops\nlast");
  std::string text = read_file_if_exists(log).value_or("");
  EXPECT_TRUE(text.starts_with("line 1\nline 2\n"));
  EXPECT_TRUE(text.ends_with("oops\nlast"));
  fs::remove(log);
}

// The error run_streamed throws for `c`, or "" if none.
std::string error_of(const StreamedCommand& c) {
  return test::error_message([&] { run_streamed(c); });
}

TEST(RunStreamed, DeadlineNamesTheStep) {
  StreamedCommand c;
  c.argv = {"sh", "-c", "sleep 30"};
  c.deadline = Deadline::after(100ms);
  EXPECT_EQ(error_of(c), "sh -c 'sleep 30' did not finish in time; stopped it");
  c.name = "sh";  // a step's name: image builds name their program only
  c.deadline = Deadline::after(100ms);
  EXPECT_EQ(error_of(c), "sh did not finish in time; stopped it");
}

TEST(RunStreamed, KillsWhatIgnoresSigtermAfterTheGrace) {
  StreamedCommand c;
  // The trap is set before the first line, so SIGTERM finds it in place.
  c.argv = {"sh", "-c", "trap '' TERM; echo ready; while :; do sleep 0.1; done"};
  c.name = "stubborn";
  c.stop_grace = 1s;
  c.deadline = Deadline::after(300ms);
  auto start = std::chrono::steady_clock::now();
  EXPECT_THROW(run_streamed(c), Error);
  auto took = std::chrono::steady_clock::now() - start;
  EXPECT_GE(took, 1s);
  EXPECT_LT(took, 10s);
}

TEST(RunStreamed, SignalStopsItAndThrowsInterrupted) {
  sigset_t set, old;
  sigemptyset(&set);
  sigaddset(&set, SIGUSR1);
  ASSERT_EQ(::pthread_sigmask(SIG_BLOCK, &set, &old), 0);
  int sfd = ::signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
  ASSERT_GE(sfd, 0);
  ::raise(SIGUSR1);  // pending, so the first poll sees it
  StreamedCommand c;
  c.argv = {"sleep", "30"};
  c.signal_fd = sfd;
  auto start = std::chrono::steady_clock::now();
  try {
    run_streamed(c);
    ADD_FAILURE() << "not interrupted";
  } catch (const Interrupted& e) {
    EXPECT_EQ(e.signo(), SIGUSR1);
  }
  EXPECT_LT(std::chrono::steady_clock::now() - start, 5s);
  ::close(sfd);
  ::pthread_sigmask(SIG_SETMASK, &old, nullptr);
}

}  // namespace
}  // namespace kestrel::assets
