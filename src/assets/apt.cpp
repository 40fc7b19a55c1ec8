#include "assets/apt.hpp"

#include <cstdlib>

#include "util/error.hpp"
#include "util/strings.hpp"

namespace kestrel::assets {

namespace fs = std::filesystem;

CommandResult run_apt(const std::vector<std::string>& argv, const fs::path& cwd, std::chrono::minutes limit) {
  try {
    return run_command(argv, cwd, Deadline::after(limit));
  } catch (const Error& e) {
    fail(
        "{} (kestrel fetches kernels with apt, as on Debian and Ubuntu; or pass a kernel "
        "with --kernel)",
        e.what());
  }
}

AptPackage apt_candidate(const std::string& name) {
  AptPackage p;
  p.name = name;
  std::vector<std::string> argv = {"apt-cache", "show", "--no-all-versions", name};
  CommandResult r = run_apt(argv, {}, std::chrono::minutes(2));
  if (r.status != 0) return p;
  for (const std::string& line : split(r.out, '\n')) {
    if (line.starts_with("Version: ")) p.version = trim(std::string_view(line).substr(9));
    if (line.starts_with("Size: ")) p.size = std::strtoull(line.c_str() + 6, nullptr, 10);
    if (trim(line).empty()) break;  // only the first record
  }
  return p;
}

std::string without_sandbox_noise(std::string_view err) {
  std::string out;
  for (const std::string& line : split(err, '\n')) {
    if (line.find("unsandboxed as root") != std::string::npos) continue;
    if (trim(line).empty()) continue;
    out += line + "\n";
  }
  return out;
}

fs::path downloaded_deb(const fs::path& dir, const std::string& name) {
  for (const fs::directory_entry& e : fs::directory_iterator(dir)) {
    if (e.path().extension() == ".deb" && e.path().filename().string().starts_with(name + "_")) return e.path();
  }
  fail("`apt-get download {}` succeeded but left no .deb in {}", name, dir.string());
}

}  // namespace kestrel::assets
