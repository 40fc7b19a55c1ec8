// `kestrel cargo` and `kestrel go`: run the user's own tool with kestrel set
// as its test runner, so tests run in VMs with the usual commands. The pure
// parts are here for the unit tests; the handlers are in cmd_wrappers.cpp.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace kestrel::cli {

// "x86_64-unknown-linux-gnu" → "CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_RUNNER".
std::string cargo_runner_variable(std::string_view triple);

// The "host: TRIPLE" line of `rustc -vV`; empty if there is none.
std::string host_triple_from_rustc(std::string_view rustc_version_output);

// What cargo and go get as the runner: "KESTREL run --", the path quoted
// for go (which honours quotes) or checked for whitespace for cargo (which
// splits on it and has no quoting).
std::string cargo_runner_value(const std::string& kestrel_path);
std::string go_exec_value(const std::string& kestrel_path);

// `go ARGS`, with "-exec RUNNER" inserted after `test` or `run` unless the
// user gave -exec already. Other go commands pass through unchanged.
std::vector<std::string> go_argv(const std::vector<std::string>& args, const std::string& runner);

// `kestrel go test --shard K/N`: "K/N" as (K, N), 1 <= K <= N <= 10000;
// nullopt when malformed.
std::optional<std::pair<int, int>> parse_shard(std::string_view text);

// The test names (Test*, Example*, Fuzz*; no benchmarks, which `go test`
// runs only with -bench) that `go test -list .` printed, sorted, each once.
std::vector<std::string> go_listed_tests(std::string_view list_output);

// The -run pattern of shard K of N: every N-th of `names` (sorted) from the
// K-th on, anchored ("^(TestA|TestB)$"); "^$" (nothing) when the shard is
// empty. A name in several packages runs in all of them, in one shard.
std::string go_shard_pattern(const std::vector<std::string>& names, int k, int n);

// The absolute path of the running kestrel (what runners should invoke).
std::string own_executable();

}  // namespace kestrel::cli
