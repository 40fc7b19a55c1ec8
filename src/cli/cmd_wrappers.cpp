// kestrel cargo ARGS... | kestrel go ARGS...
#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstdlib>
#include <filesystem>

#include "assets/command.hpp"
#include "cli/commands.hpp"
#include "cli/wrappers.hpp"
#include "config/config.hpp"
#include "util/error.hpp"
#include "util/process.hpp"
#include "util/strings.hpp"

namespace kestrel::cli {

namespace {

const char* kCargoHelp = R"(usage: kestrel cargo CARGO-ARGS...

Runs cargo with kestrel as the target runner for the host triple, i.e. with
CARGO_TARGET_<TRIPLE>_RUNNER="/path/to/kestrel run --", so every test binary
(and with cargo-nextest every single test) runs in its own fresh VM:

  kestrel cargo test
  kestrel cargo test -p PKG NAME -- --nocapture
  kestrel cargo nextest run

Listing invocations (--list, used by nextest) run on the host (see
`kestrel run --help`). A failing test keeps its VM and prints how to reach it.
The same without the wrapper:
  CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_RUNNER="kestrel run --" cargo test
VM settings come from kestrel.toml and KESTREL_* variables (`kestrel config`).
)";

const char* kGoHelp = R"(usage: kestrel go GO-ARGS...

Runs go; for `go test` and `go run` it adds -exec "/path/to/kestrel run --",
so each test binary runs in a fresh VM:

  kestrel go test ./...
  kestrel go test -run TestName -v ./pkg

`go test -list` (the binary gets -test.list) runs on the host. Other go
commands run unchanged.

--shard K/N (right after `test`; K from 1): runs the K-th of N shards of the
tests: the names `go test -list .` prints (on the host), sorted, every N-th
from the K-th on, as a -run pattern; the N shards together run every test
once (e.g. one shard per Slurm array task, docs/scale-out.md). Not with -run
or -list.
  kestrel go test --shard 2/4 -json ./... > shard-2.json The same without the wrapper:
  go test -exec "kestrel run --" ./...
VM settings come from kestrel.toml and KESTREL_* variables (`kestrel config`).
)";

bool asks_for_help(const Args& args) { return !args.empty() && (args[0] == "-h" || args[0] == "--help"); }

// `package`: the Debian package that provides argv[0], for the error message.
[[noreturn]] void exec_tool(const std::vector<std::string>& argv, const char* package) {
  int err = exec_replacing(argv[0], argv);
  if (err == ENOENT) fail("cannot run {}: not found in PATH; install it: sudo apt-get install {}", argv[0], package);
  throw sys_error(err, "cannot run " + argv[0]);
}

std::string host_triple() {
  const char* rustc_env = std::getenv("RUSTC");
  std::string rustc = rustc_env && *rustc_env ? rustc_env : "rustc";
  assets::CommandResult r;
  try {
    r = assets::run_command({rustc, "-vV"}, {}, Deadline::after(std::chrono::seconds(30)));
  } catch (const Error& e) {
    fail("cannot ask rustc for the host target triple: {}; install Rust (sudo apt-get install cargo)", e.what());
  }
  std::string triple = host_triple_from_rustc(r.out);
  if (r.status != 0 || triple.empty())
    fail("cannot find the host target triple: {}", assets::command_failure({rustc, "-vV"}, r));
  return triple;
}

// Whether `args` (after "test") hold a go flag, as -name, --name or -name=.
bool has_go_flag(const std::vector<std::string>& args, std::string_view name) {
  return std::any_of(args.begin(), args.end(), [&](const std::string& a) {
    std::string_view v = a;
    if (v.starts_with("--")) v.remove_prefix(1);
    if (!v.starts_with("-")) return false;
    v.remove_prefix(1);
    return v == name || (v.starts_with(name) && v.size() > name.size() && v[name.size()] == '=');
  });
}

// `kestrel go test --shard K/N ARGS`: lists the tests on the host, then
// runs go with the shard's -run pattern.
[[noreturn]] void go_test_shard(std::vector<std::string> args, const std::string& runner) {
  std::string spec;
  auto it = std::find_if(args.begin(), args.end(),
                         [](const std::string& a) { return a == "--shard" || a.rfind("--shard=", 0) == 0; });
  if (it == args.end()) fail("no --shard");
  if (*it == "--shard") {
    if (it + 1 == args.end()) fail("--shard needs K/N, e.g. --shard 1/4");
    spec = *(it + 1);
    args.erase(it, it + 2);
  } else {
    spec = it->substr(8);
    args.erase(it);
  }
  auto shard = parse_shard(spec);
  if (!shard) fail("--shard {}: expected K/N with 1 <= K <= N <= 10000, e.g. --shard 1/4", spec);
  if (has_go_flag(args, "run") || has_go_flag(args, "list"))
    fail("--shard chooses the tests itself: it cannot be combined with -run or -list");
  // The listing: test binaries built and asked for their tests (on the host:
  // kestrel runs a binary that only lists directly).
  std::vector<std::string> list;
  for (const auto& a : go_argv(args, runner)) {
    if (a == "-json") continue;
    list.push_back(a);
    if (list.size() == 2) {  // after "go test"
      list.push_back("-list");
      list.push_back(".");
    }
  }
  assets::CommandResult listed = assets::run_command(list, {}, Deadline::after(std::chrono::hours(2)));
  if (listed.status != 0) {
    std::fputs(listed.out.c_str(), stdout);
    std::fputs(listed.err.c_str(), stderr);
    fail("`go test -list .` failed (status {}): the shard's tests are unknown", listed.status);
  }
  std::vector<std::string> names = go_listed_tests(listed.out);
  std::vector<std::string> argv;
  for (const auto& a : go_argv(args, runner)) {
    argv.push_back(a);
    if (argv.size() == 2) {  // after "go test"
      argv.push_back("-run");
      argv.push_back(go_shard_pattern(names, shard->first, shard->second));
    }
  }
  exec_tool(argv, "golang-go");
}

}  // namespace

std::optional<std::pair<int, int>> parse_shard(std::string_view text) {
  size_t slash = text.find('/');
  if (slash == std::string_view::npos) return std::nullopt;
  auto number = [](std::string_view s) -> std::optional<int> {
    int n = 0;
    auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), n);
    if (s.empty() || ec != std::errc() || end != s.data() + s.size()) return std::nullopt;
    return n;
  };
  auto k = number(text.substr(0, slash)), n = number(text.substr(slash + 1));
  if (!k || !n || *k < 1 || *n > 10000 || *k > *n) return std::nullopt;
  return std::pair{*k, *n};
}

std::vector<std::string> go_listed_tests(std::string_view list_output) {
  std::vector<std::string> names;
  for (const auto& line : split(list_output, '\n')) {
    std::string_view l = trim(line);
    bool test = l.starts_with("Test") || l.starts_with("Example") || l.starts_with("Fuzz");
    bool word = !l.empty() && std::all_of(l.begin(), l.end(), [](char c) {
      return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
             static_cast<unsigned char>(c) >= 0x80;
    });
    if (test && word) names.push_back(std::string(l));
  }
  std::sort(names.begin(), names.end());
  names.erase(std::unique(names.begin(), names.end()), names.end());
  return names;
}

std::string go_shard_pattern(const std::vector<std::string>& names, int k, int n) {
  std::string pattern;
  for (size_t i = static_cast<size_t>(k - 1); i < names.size(); i += static_cast<size_t>(n))
    pattern += (pattern.empty() ? "" : "|") + names[i];
  return pattern.empty() ? "^$" : "^(" + pattern + ")$";
}

std::string cargo_runner_variable(std::string_view triple) {
  std::string var = "CARGO_TARGET_";
  for (char c : triple)
    var += (c == '-' || c == '.') ? '_' : static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return var + "_RUNNER";
}

std::string host_triple_from_rustc(std::string_view output) {
  for (const auto& line : split(output, '\n')) {
    if (line.rfind("host: ", 0) == 0) return std::string(trim(std::string_view(line).substr(6)));
  }
  return "";
}

std::string cargo_runner_value(const std::string& kestrel_path) {
  if (kestrel_path.find_first_of(" \t\n") != std::string::npos)
    fail(
        "kestrel's path '{}' contains whitespace, which cargo's runner setting cannot express; "
        "install kestrel elsewhere or put it in PATH and use CARGO_TARGET_<TRIPLE>_RUNNER=\"kestrel run --\"",
        kestrel_path);
  return kestrel_path + " run --";
}

std::string go_exec_value(const std::string& kestrel_path) {
  if (kestrel_path.find_first_of("'\"") != std::string::npos)
    fail("kestrel's path '{}' contains a quote, which go's -exec cannot express", kestrel_path);
  if (kestrel_path.find_first_of(" \t\n") != std::string::npos) return "'" + kestrel_path + "' run --";
  return kestrel_path + " run --";
}

std::vector<std::string> go_argv(const std::vector<std::string>& args, const std::string& runner) {
  std::vector<std::string> argv = {"go"};
  argv.insert(argv.end(), args.begin(), args.end());
  if (args.empty() || (args[0] != "test" && args[0] != "run")) return argv;
  bool has_exec = std::any_of(args.begin(), args.end(), [](const std::string& a) {
    return a == "-exec" || a == "--exec" || a.rfind("-exec=", 0) == 0 || a.rfind("--exec=", 0) == 0;
  });
  if (!has_exec) argv.insert(argv.begin() + 2, {"-exec", runner});
  return argv;
}

std::string own_executable() {
  std::error_code ec;
  auto self = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (ec) fail("cannot find kestrel's own path (/proc/self/exe): {}", ec.message());
  return self.string();
}

int cmd_cargo(const Args& args) {
  if (asks_for_help(args)) {
    std::fputs(kCargoHelp, stdout);
    return 0;
  }
  config::Config::load();  // a bad kestrel.toml is reported once, before cargo builds anything
  std::string var = cargo_runner_variable(host_triple());
  std::string value = cargo_runner_value(own_executable());
  if (::setenv(var.c_str(), value.c_str(), 1) != 0) fail_errno("cannot set {}", var);
  std::vector<std::string> argv = {"cargo"};
  argv.insert(argv.end(), args.begin(), args.end());
  exec_tool(argv, "cargo");
}

int cmd_go(const Args& args) {
  if (asks_for_help(args)) {
    std::fputs(kGoHelp, stdout);
    return 0;
  }
  config::Config::load();  // a bad kestrel.toml is reported once, before go builds anything
  bool shard = !args.empty() && args[0] == "test" && std::any_of(args.begin(), args.end(), [](const std::string& a) {
    return a == "--shard" || a.rfind("--shard=", 0) == 0;
  });
  if (shard) go_test_shard(args, go_exec_value(own_executable()));
  exec_tool(go_argv(args, go_exec_value(own_executable())), "golang-go");
}

}  // namespace kestrel::cli
