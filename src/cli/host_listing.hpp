// Test harnesses ask their runner to list tests before running them (cargo
// and nextest: `--list`; GoogleTest via CTest's gtest_discover_tests:
// `--gtest_list_tests`; Go: `-test.list`). Listing reads no test state and
// needs no VM, so `kestrel run` executes such invocations directly on the
// host unless the configuration says otherwise (key list_on_host).
#pragma once

#include <filesystem>
#include <string>
#include <vector>

namespace kestrel::cli {

// True if the program's arguments (argv without argv[0]) ask it to list tests.
bool is_listing_invocation(const std::vector<std::string>& args);

// Replaces this process with `program` run with `argv` (argv[0] as given).
// Returns only by throwing.
[[noreturn]] void exec_on_host(const std::filesystem::path& program, const std::vector<std::string>& argv);

}  // namespace kestrel::cli
