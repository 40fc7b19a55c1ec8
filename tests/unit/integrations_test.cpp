// Test-runner integrations: which invocations list tests (run on the host),
// what `kestrel cargo` and `kestrel go` hand to the tools, and the guest
// environment policy.
#include <gtest/gtest.h>

#include "cli/host_listing.hpp"
#include "cli/wrappers.hpp"
#include "host/environment.hpp"
#include "util/error.hpp"

namespace kestrel {
namespace {

using Args = std::vector<std::string>;

TEST(HostListing, RecognizesTheHarnessesListingFlags) {
  using cli::is_listing_invocation;
  // libtest and nextest (nextest lists with --list --format terse [--ignored])
  EXPECT_TRUE(is_listing_invocation({"--list"}));
  EXPECT_TRUE(is_listing_invocation({"--list", "--format", "terse", "--ignored"}));
  // GoogleTest, as gtest_discover_tests calls it
  EXPECT_TRUE(is_listing_invocation({"--gtest_list_tests"}));
  EXPECT_TRUE(is_listing_invocation({"--gtest_list_tests", "--gtest_filter=A.*"}));
  EXPECT_TRUE(is_listing_invocation({"--gtest_list_tests=1"}));
  EXPECT_FALSE(is_listing_invocation({"--gtest_list_tests=0"}));
  // go test -list: the test binary gets -test.list=REGEX
  EXPECT_TRUE(is_listing_invocation({"-test.paniconexit0", "-test.timeout=10m0s", "-test.list=."}));
  EXPECT_TRUE(is_listing_invocation({"-test.list", "Test.*"}));
  EXPECT_TRUE(is_listing_invocation({"--test.list=."}));

  // Running tests is not listing.
  EXPECT_FALSE(is_listing_invocation({}));
  EXPECT_FALSE(is_listing_invocation({"--exact", "tests::adds", "--nocapture"}));
  EXPECT_FALSE(is_listing_invocation({"--gtest_filter=Calc.Adds", "--gtest_also_run_disabled_tests"}));
  EXPECT_FALSE(is_listing_invocation({"-test.run=TestList", "-test.v=true"}));
  EXPECT_FALSE(is_listing_invocation({"--listing"}));
  EXPECT_FALSE(is_listing_invocation({"--list-all"}));
  // After "--" the arguments belong to the tests themselves.
  EXPECT_FALSE(is_listing_invocation({"--", "--list"}));
}

// kestrel go test --shard K/N: the shard's -run pattern from go's listing.
TEST(GoShard, ParsesKOfN) {
  EXPECT_EQ(cli::parse_shard("1/4"), (std::pair{1, 4}));
  EXPECT_EQ(cli::parse_shard("4/4"), (std::pair{4, 4}));
  for (const char* bad : {"0/4", "5/4", "1/0", "1/10001", "-1/4", "1/", "/4", "14", "1/4x", "a/b", ""})
    EXPECT_EQ(cli::parse_shard(bad), std::nullopt) << bad;
}

TEST(GoShard, ListingAndPatterns) {
  std::string listing =
      "TestB\nTestA\nExampleX\nBenchmarkSlow\nFuzzParse\nok  \texample.com/calc\t0.004s\n"
      "TestA\nTest_c\n?   \texample.com/none\t[no test files]\nok  \texample.com/more\t0.002s\n";
  auto names = cli::go_listed_tests(listing);
  EXPECT_EQ(names, (std::vector<std::string>{"ExampleX", "FuzzParse", "TestA", "TestB", "Test_c"}));
  EXPECT_EQ(cli::go_shard_pattern(names, 1, 2), "^(ExampleX|TestA|Test_c)$");
  EXPECT_EQ(cli::go_shard_pattern(names, 2, 2), "^(FuzzParse|TestB)$");
  EXPECT_EQ(cli::go_shard_pattern(names, 1, 1), "^(ExampleX|FuzzParse|TestA|TestB|Test_c)$");
  EXPECT_EQ(cli::go_shard_pattern(names, 7, 7), "^$");  // an empty shard runs nothing
  EXPECT_EQ(cli::go_shard_pattern({}, 1, 3), "^$");
}

TEST(CargoWrapper, RunnerVariableForTheHostTriple) {
  EXPECT_EQ(cli::cargo_runner_variable("x86_64-unknown-linux-gnu"), "CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_RUNNER");
  EXPECT_EQ(cli::cargo_runner_variable("thumbv7em-none-eabihf"), "CARGO_TARGET_THUMBV7EM_NONE_EABIHF_RUNNER");
  EXPECT_EQ(cli::cargo_runner_variable("wasm32-wasip1.x"), "CARGO_TARGET_WASM32_WASIP1_X_RUNNER");
}

TEST(CargoWrapper, HostTripleFromRustc) {
  EXPECT_EQ(
      cli::host_triple_from_rustc("rustc 1.63.0\nbinary: rustc\nhost: x86_64-unknown-linux-gnu\nrelease: 1.63.0\n"),
      "x86_64-unknown-linux-gnu");
  EXPECT_EQ(cli::host_triple_from_rustc("rustc 1.63.0\n"), "");
}

TEST(CargoWrapper, RunnerValue) {
  EXPECT_EQ(cli::cargo_runner_value("/usr/bin/kestrel"), "/usr/bin/kestrel run --");
  // cargo splits the runner on whitespace and has no quoting.
  EXPECT_THROW(cli::cargo_runner_value("/opt/my tools/kestrel"), Error);
}

TEST(GoWrapper, ExecIsAddedToTestAndRunOnly) {
  const std::string runner = "/usr/bin/kestrel run --";
  EXPECT_EQ(cli::go_argv({"test", "./..."}, runner), (Args{"go", "test", "-exec", runner, "./..."}));
  EXPECT_EQ(cli::go_argv({"test", "-run", "X", "-v", "."}, runner),
            (Args{"go", "test", "-exec", runner, "-run", "X", "-v", "."}));
  EXPECT_EQ(cli::go_argv({"run", "./cmd/x"}, runner), (Args{"go", "run", "-exec", runner, "./cmd/x"}));
  EXPECT_EQ(cli::go_argv({"vet", "./..."}, runner), (Args{"go", "vet", "./..."}));
  EXPECT_EQ(cli::go_argv({}, runner), (Args{"go"}));
  // The user's own -exec wins.
  EXPECT_EQ(cli::go_argv({"test", "-exec=sudo", "."}, runner), (Args{"go", "test", "-exec=sudo", "."}));
  EXPECT_EQ(cli::go_exec_value("/opt/my tools/kestrel"), "'/opt/my tools/kestrel' run --");
}

TEST(Environment, PassAndDenyPatterns) {
  std::string a = "PATH=/bin", b = "AWS_SECRET=x", c = "AWS_REGION=y", d = "RUST_LOG=1", e = "DISPLAY=:0";
  char* env[] = {a.data(), b.data(), c.data(), d.data(), e.data(), nullptr};
  host::EnvPolicy deny_aws;
  deny_aws.deny = {"AWS_*"};
  EXPECT_EQ(host::guest_environment(env, deny_aws), (Args{"PATH=/bin", "RUST_LOG=1"}));
  host::EnvPolicy only;
  only.pass = {"PATH", "RUST_*", "DISPLAY"};  // the built-in deny-list still applies
  EXPECT_EQ(host::guest_environment(env, only), (Args{"PATH=/bin", "RUST_LOG=1"}));
  host::EnvPolicy none;
  none.pass = {};
  EXPECT_TRUE(host::guest_environment(env, none).empty());
}

}  // namespace
}  // namespace kestrel
