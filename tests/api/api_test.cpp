// The C++ API as docs/api.md promises it, where a harness would trip: run()
// as `kestrel run` (programs that cannot run, an image's working directory),
// argument errors, Topology::exec from several threads at once, a
// moved-from Topology. Run by tests/vm/t-api.sh (it boots VMs).
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <future>
#include <kestrel/kestrel.hpp>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

std::string thrown_by(const std::function<void()>& f) {
  try {
    f();
  } catch (const std::runtime_error& e) {
    return e.what();
  }
  return "";
}

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

// As the command: a program that cannot run is a status with its reason,
// found on the host before any VM boots.
TEST(Run, ProgramsThatCannotRunAreStatuses) {
  kestrel::ExecResult empty = kestrel::run({""});
  EXPECT_EQ(empty.status, 127);
  EXPECT_TRUE(contains(empty.err, "cannot run '': No such file or directory")) << empty.err;
  kestrel::ExecResult unknown = kestrel::run({"kestrel-no-such-program"});
  EXPECT_EQ(unknown.status, 127);
  EXPECT_TRUE(contains(unknown.err, "kestrel-no-such-program: not found in PATH")) << unknown.err;
  EXPECT_EQ(kestrel::run({"/nonexistent/program"}).status, 127);
  kestrel::ExecResult dir = kestrel::run({"/"});
  EXPECT_EQ(dir.status, 126);
  EXPECT_TRUE(contains(dir.err, "is a directory")) << dir.err;
}

TEST(Run, ArgumentErrorsThrow) {
  EXPECT_TRUE(contains(thrown_by([] { kestrel::run({}); }), "the command is empty"));
  kestrel::VmOptions options;
  options.timeout = -5ms;
  EXPECT_TRUE(contains(thrown_by([&] { kestrel::run({"/bin/true"}, options); }), "the timeout is negative (-5 ms)"));
}

// docs/api.md: `run` with an image starts the program in the working
// directory, written through to the host, as `kestrel run --image` does.
TEST(Run, AnImageRunStartsInTheProjectDirectory) {
  const char* recipe = std::getenv("KESTREL_TEST_RECIPE");
  if (!recipe) GTEST_SKIP() << "KESTREL_TEST_RECIPE names no recipe";
  fs::path project = fs::temp_directory_path() / ("kestrel-api-project-" + std::to_string(::getpid()));
  fs::create_directories(project / ".git");  // a project, as `auto` write-through finds one
  fs::path before = fs::current_path();
  fs::current_path(project);
  kestrel::VmOptions options;
  options.image = recipe;
  kestrel::ExecResult r = kestrel::run({"/bin/sh", "-c", "pwd; echo written > made-in-the-vm"}, options);
  fs::current_path(before);
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.out, project.string() + "\n") << r.err;
  EXPECT_TRUE(fs::exists(project / "made-in-the-vm"));
  fs::remove_all(project);
}

kestrel::TopologyDefinition one_node() {
  kestrel::TopologyDefinition d;
  d.name = "api-threads";
  kestrel::Node n;
  n.name = "n";
  d.nodes = {n};
  return d;
}

TEST(Topology, ExecsFromSeveralThreadsRunAtOnce) {
  kestrel::Topology t = kestrel::Topology::up(one_node());
  ASSERT_EQ(t.exec("n", "true").status, 0);  // the first exec's connection is made
  auto started = Clock::now();
  std::vector<std::future<kestrel::ExecResult>> sleeps;
  for (int i = 0; i < 4; ++i) sleeps.push_back(std::async(std::launch::async, [&] { return t.exec("n", "sleep 2"); }));
  for (auto& s : sleeps) EXPECT_EQ(s.get().status, 0);
  auto took = Clock::now() - started;
  EXPECT_LT(took, 3s) << std::chrono::duration<double>(took).count() << " s for four `sleep 2` at once";

  // A server in one thread, its client in another: neither waits on the other's call.
  ASSERT_EQ(t.exec("n", "rm -f /tmp/pipe && mkfifo /tmp/pipe").status, 0);
  auto server =
      std::async(std::launch::async, [&] { return t.exec("n", "read line </tmp/pipe; echo got $line", 20s); });
  std::this_thread::sleep_for(200ms);
  auto client = std::async(std::launch::async, [&] { return t.exec("n", "echo hello >/tmp/pipe", 20s); });
  EXPECT_EQ(client.get().status, 0);
  kestrel::ExecResult served = server.get();
  EXPECT_EQ(served.status, 0);
  EXPECT_EQ(served.out, "got hello\n");

  EXPECT_TRUE(contains(thrown_by([&] { t.exec("n", "true", -1ms); }), "the timeout is negative"));
}

TEST(Topology, AMovedFromTopologySaysSo) {
  kestrel::Topology a = kestrel::Topology::up(one_node());
  kestrel::Topology b = std::move(a);
  const std::string moved = "this Topology was moved from";
  EXPECT_TRUE(contains(thrown_by([&] { (void)a.dir(); }), "Topology::dir: " + moved));
  EXPECT_TRUE(contains(thrown_by([&] { (void)a.nodes(); }), moved));
  EXPECT_TRUE(contains(thrown_by([&] { a.exec("n", "true"); }), "Topology::exec: " + moved));
  EXPECT_TRUE(contains(thrown_by([&] { a.keep(); }), moved));
  EXPECT_TRUE(contains(thrown_by([&] { (void)a.address("n"); }), moved));
  EXPECT_TRUE(contains(thrown_by([&] { a.link("n", "m", true); }), moved));
  a.down();                                       // harmless
  EXPECT_EQ(b.exec("n", "hostname").out, "n\n");  // the live one is untouched
  fs::path dir = b.dir();
  b.down();
  EXPECT_FALSE(fs::exists(dir));
}

}  // namespace
