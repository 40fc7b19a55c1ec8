#include "cli/host_listing.hpp"

#include <unistd.h>

#include <algorithm>
#include <cstdio>

#include "util/error.hpp"

namespace kestrel::cli {

const std::vector<std::string>& listing_flags() {
  static const std::vector<std::string> flags = {"--list", "--gtest_list_tests", "-test.list"};
  return flags;
}

namespace {

// `arg` is `flag`, `flag=VALUE`, or for Go's flag package also `-flag` spelled `--flag`.
bool is_flag(std::string_view arg, std::string_view flag) {
  if (flag.size() >= 2 && flag[0] == '-' && flag[1] != '-' && arg.size() > 2 && arg.substr(0, 2) == "--")
    arg.remove_prefix(1);  // Go accepts --test.list as well as -test.list
  if (arg.substr(0, flag.size()) != flag) return false;
  return arg.size() == flag.size() || arg[flag.size()] == '=';
}

bool is_false(std::string_view arg) {
  auto eq = arg.find('=');
  if (eq == std::string_view::npos) return false;
  std::string_view v = arg.substr(eq + 1);
  return v == "0" || v == "false" || v == "no";
}

}  // namespace

bool is_listing_invocation(const std::vector<std::string>& args) {
  for (const std::string& arg : args) {
    if (arg == "--") return false;  // what follows is for the tests themselves
    if (arg == "--list") return true;  // libtest and nextest take no value
    if (is_flag(arg, "--gtest_list_tests") && !is_false(arg)) return true;
    if (is_flag(arg, "-test.list")) return true;
  }
  return false;
}

void exec_on_host(const std::filesystem::path& program, const std::vector<std::string>& argv) {
  std::vector<char*> c_argv;
  for (const auto& a : argv) c_argv.push_back(const_cast<char*>(a.c_str()));
  c_argv.push_back(nullptr);
  std::fflush(stdout);
  std::fflush(stderr);
  ::execv(program.c_str(), c_argv.data());
  fail_errno("cannot run {} on the host", program.string());
}

}  // namespace kestrel::cli
