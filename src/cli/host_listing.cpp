#include "cli/host_listing.hpp"

#include "util/error.hpp"
#include "util/process.hpp"

namespace kestrel::cli {

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
    if (arg == "--") return false;     // what follows is for the tests themselves
    if (arg == "--list") return true;  // libtest and nextest take no value
    if (is_flag(arg, "--gtest_list_tests") && !is_false(arg)) return true;
    if (is_flag(arg, "-test.list")) return true;
  }
  return false;
}

void exec_on_host(const std::filesystem::path& program, const std::vector<std::string>& argv) {
  int err = exec_replacing(program.string(), argv);
  throw sys_error(err, "cannot run " + program.string() + " on the host");
}

}  // namespace kestrel::cli
