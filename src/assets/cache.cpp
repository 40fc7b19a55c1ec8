#include "assets/cache.hpp"

#include <pwd.h>
#include <unistd.h>

#include <cstdlib>

#include "util/error.hpp"
#include "util/fs.hpp"

namespace kestrel::assets {

namespace {

// A set, non-empty environment variable, else nullptr.
const char* env(const char* name) {
  const char* value = std::getenv(name);
  return value && *value ? value : nullptr;
}

std::filesystem::path home_dir() {
  if (const char* home = env("HOME")) return home;
  // No $HOME (e.g. under a minimal service manager): ask the user database.
  if (const passwd* pw = ::getpwuid(::getuid()); pw && pw->pw_dir && *pw->pw_dir) return pw->pw_dir;
  fail("cannot find a cache directory: $HOME is not set; set KESTREL_CACHE_DIR");
}

}  // namespace

std::filesystem::path cache_dir() {
  std::filesystem::path dir;
  if (const char* explicit_dir = env("KESTREL_CACHE_DIR")) {
    dir = explicit_dir;
  } else if (const char* xdg = env("XDG_CACHE_HOME"); xdg && xdg[0] == '/') {
    // The XDG spec says relative values are invalid and must be ignored.
    dir = std::filesystem::path(xdg) / "kestrel";
  } else {
    dir = home_dir() / ".cache" / "kestrel";
  }
  dir = std::filesystem::absolute(dir).lexically_normal();
  if (dir.filename().empty()) dir = dir.parent_path();  // "/x/cache/" → "/x/cache"
  make_dirs(dir, 0755);
  return dir;
}

}  // namespace kestrel::assets
