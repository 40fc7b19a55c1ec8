#include "image/recipe.hpp"

#include <fcntl.h>
#include <linux/magic.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <toml++/toml.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <map>
#include <optional>
#include <utility>

#include "config/toml_words.hpp"
#include "util/error.hpp"
#include "util/fd.hpp"
#include "util/fs.hpp"
#include "util/io.hpp"
#include "util/sha256.hpp"
#include "util/strings.hpp"

namespace kestrel::image {
namespace {

// The file systems whose files are made up as they are read (and may block,
// or change the host when read: /proc/kmsg): no source for an image.
const char* kernel_file_system(const fs::path& path) {
  struct statfs sf {};
  if (::statfs(path.c_str(), &sf) != 0) return nullptr;
  switch (static_cast<unsigned long>(sf.f_type)) {
    case PROC_SUPER_MAGIC:
      return "/proc";
    case SYSFS_MAGIC:
      return "/sys";
    case DEBUGFS_MAGIC:
      return "debugfs";
    case TRACEFS_MAGIC:
      return "tracefs";
    case SECURITYFS_MAGIC:
      return "securityfs";
    case CGROUP_SUPER_MAGIC:
    case CGROUP2_SUPER_MAGIC:
      return "a cgroup file system";
    default:
      return nullptr;
  }
}

// The keys a recipe knows, in the order the format lists them; an unknown
// key's error lists them.
constexpr std::string_view kRecipeKeys[] = {"name", "suite", "mirror", "packages", "size", "run", "files", "service"};
constexpr std::string_view kServiceKeys[] = {"name", "command", "ready", "ready_timeout"};

constexpr uint64_t kMiB = 1ull << 20;
constexpr uint64_t kGiB = 1ull << 30;
constexpr uint64_t kMinSize = 64 * kMiB;
constexpr uint64_t kMaxSize = 1024 * kGiB;
constexpr double kMaxReadyTimeoutSeconds = 3600;
// sun_path holds 108 bytes, the terminating NUL included.
constexpr size_t kMaxSocketPath = 107;

bool is_lower_or_digit(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); }

// Recipe and service names become file and unit names: keep them tame.
bool valid_name(std::string_view s) {
  if (s.empty() || s.size() > 63 || !is_lower_or_digit(s[0])) return false;
  return std::all_of(s.begin(), s.end(),
                     [](char c) { return is_lower_or_digit(c) || c == '.' || c == '_' || c == '-'; });
}

// Debian policy: a package name is at least two characters of [a-z0-9+.-],
// starting alphanumeric; a version starts with a digit (after an optional
// epoch, also digits) and uses [A-Za-z0-9.+~:-]. mmdebstrap takes the list
// comma- or space-separated, so neither may appear inside one.
bool valid_package(std::string_view s) {
  std::string_view name = s.substr(0, s.find('='));
  if (name.size() < 2 || !is_lower_or_digit(name[0])) return false;
  if (!std::all_of(name.begin(), name.end(),
                   [](char c) { return is_lower_or_digit(c) || c == '+' || c == '-' || c == '.'; }))
    return false;
  if (name.size() == s.size()) return true;
  std::string_view version = s.substr(name.size() + 1);
  if (version.empty() || version[0] < '0' || version[0] > '9') return false;
  return std::all_of(version.begin(), version.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '+' ||
           c == '~' || c == ':' || c == '-';
  });
}

bool has_control_char(std::string_view s) {
  return std::any_of(s.begin(), s.end(), [](char c) { return static_cast<unsigned char>(c) < 0x20 || c == 0x7f; });
}

// mmdebstrap takes the mirror as one argument of a comma-separated list.
bool valid_mirror(std::string_view s) {
  std::string_view rest;
  if (s.starts_with("http://"))
    rest = s.substr(7);
  else if (s.starts_with("https://"))
    rest = s.substr(8);
  else
    return false;
  return !rest.empty() && rest[0] != '/' && rest.find_first_of(" ,") == std::string_view::npos &&
         !has_control_char(rest);
}

// "2G", "512M", "65536K", "1073741824": bytes, the suffix a power of 1024.
std::optional<uint64_t> parse_size(std::string_view s) {
  uint64_t unit = 1;
  char suffix = s.empty() ? '\0' : static_cast<char>(std::toupper(static_cast<unsigned char>(s.back())));
  if (size_t at = std::string_view("KMG").find(suffix); suffix && at != std::string_view::npos) {
    unit = 1ull << (10 * (at + 1));  // K, M, G: 2^10, 2^20, 2^30
    s.remove_suffix(1);
  }
  uint64_t value = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), value);
  if (s.empty() || ec != std::errc() || end != s.data() + s.size() || value > UINT64_MAX / unit) return std::nullopt;
  return value * unit;
}

std::string format_size(uint64_t bytes) {
  if (bytes % kGiB == 0) return fmt::format("{}G", bytes / kGiB);
  if (bytes % kMiB == 0) return fmt::format("{}M", bytes / kMiB);
  return fmt::format("{} bytes", bytes);
}

using config::in_file_order;
using config::line_of;
using config::toml_type_name;

bool is_recipe_key(std::string_view key) { return std::ranges::find(kRecipeKeys, key) != std::end(kRecipeKeys); }

// Reads a recipe's TOML into a Recipe.
struct Reader : config::TomlReader {
  fs::path dir;  // the recipe's directory (absolute): the base of relative `files`

  Reader(const fs::path& file, fs::path recipe_dir)
      : TomlReader(file.string(), kRecipeKeys), dir(std::move(recipe_dir)) {}

  uint64_t size_of(const toml::node& node) const {
    std::optional<uint64_t> bytes;
    std::string shown;
    if (auto i = node.as_integer()) {
      if (i->get() >= 0) bytes = static_cast<uint64_t>(i->get());  // 0 is out of range, below
      shown = std::to_string(i->get());
    } else if (auto s = node.as_string()) {
      bytes = parse_size(s->get());
      shown = s->get();
    } else {
      error_at(node, fmt::format("`size` must be a string like \"2G\" or an integer number of bytes, not {}",
                                 toml_type_name(node.type())));
    }
    if (!bytes)
      error_at(node, fmt::format("`size`: '{}' is not a size: write bytes, or a number and K, M or G", shown));
    if (*bytes < kMinSize || *bytes > kMaxSize)
      error_at(node, fmt::format("`size` {} is out of range: at least {}, at most {}", shown, format_size(kMinSize),
                                 format_size(kMaxSize)));
    return *bytes;
  }

  std::vector<FileSpec> files_of(const toml::node& node) const {
    auto table = node.as_table();
    if (!table)
      error_at(node,
               fmt::format("`files` must be a table of host path = image path, not {}", toml_type_name(node.type())));
    std::vector<FileSpec> files;
    std::map<std::string, std::string> source_of;  // image path -> host path, to catch one written twice
    for (auto [key, value] : in_file_order(*table)) {
      std::string host(key->str());
      int line = line_of(key->source());
      if (!value->is_string()) {
        std::string message = fmt::format("files: '{}' must map to an image path (a string), not {}", host,
                                          toml_type_name(value->type()));
        if (is_recipe_key(host))
          message += fmt::format(" ('{}' is a top-level key: put it before the first [table])", host);
        error_at(line, message);
      }
      std::string to = value->as_string()->get();
      // Normalised so that "/etc/./x" and "/etc/x" are one path; ".." is
      // refused before that, since it could climb out of where it seems.
      fs::path to_path(to);
      auto has_dotdot = std::ranges::any_of(to_path, [](const fs::path& c) { return c == ".."; });
      if (!to_path.is_absolute() || has_dotdot || has_control_char(to))
        error_at(line, fmt::format("files: image path '{}' must be absolute, without '..' or control characters", to));
      std::string normal = to_path.lexically_normal().string();
      while (normal.size() > 1 && normal.back() == '/') normal.pop_back();
      if (normal == "/")
        error_at(line, fmt::format("files: image path '{}' is the root itself: name a path below it", to));
      if (host.empty()) error_at(line, "files: the host path is empty");
      fs::path from = (dir / host).lexically_normal();  // an absolute `host` replaces dir
      struct stat st {};
      if (::stat(from.c_str(), &st) != 0) error_at(line, sys_error(errno, "files: " + from.string()).what());
      if (!S_ISREG(st.st_mode) && !S_ISDIR(st.st_mode))
        error_at(line, fmt::format("files: {} is neither a regular file nor a directory", from.string()));
      if (const char* fs_name = kernel_file_system(from))
        error_at(line, fmt::format("files: {} is on {}, a file system the kernel makes up as it is read; copy a real "
                                   "file (or make one in a `run` command)",
                                   from.string(), fs_name));
      auto [it, fresh] = source_of.emplace(normal, host);
      if (!fresh) error_at(line, fmt::format("files: image path '{}' is also the target of '{}'", normal, it->second));
      files.push_back({from, normal, line});
    }
    std::ranges::sort(files, [](const FileSpec& a, const FileSpec& b) { return fs::path(a.to) < fs::path(b.to); });
    return files;
  }

  std::vector<ServiceSpec> services_of(const toml::node& node) const {
    std::vector<ServiceSpec> services;
    std::map<std::string, int> line_of_name;
    for (const toml::table* table : tables_of(node, "service")) {
      services.push_back(service_of(*table));
      const ServiceSpec& s = services.back();
      int line = line_of((*table)["name"].node()->source());
      if (auto [it, fresh] = line_of_name.emplace(s.name, line); !fresh)
        error_at(line, fmt::format("service '{}' is already defined on line {}", s.name, it->second));
    }
    return services;
  }

  ServiceSpec service_of(const toml::table& table) const {
    auto [name_node, command_node, ready_node, timeout_node] = fields_of(table, kServiceKeys, " in [[service]]");
    if (!name_node) error_at(table, "[[service]] has no `name`");
    ServiceSpec s;
    s.name = string_of(*name_node, "name");
    if (!valid_name(s.name))
      error_at(*name_node, fmt::format("service name '{}' must match [a-z0-9][a-z0-9._-]{{0,62}}", s.name));
    if (!command_node) error_at(table, fmt::format("service '{}' has no `command`", s.name));
    s.command = string_of(*command_node, "command");
    if (trim(s.command).empty()) error_at(*command_node, fmt::format("service '{}': `command` is empty", s.name));
    if (ready_node) {
      std::string spec = string_of(*ready_node, "ready");
      try {
        s.ready = parse_ready(spec);
      } catch (const Error& e) {
        error_at(*ready_node, fmt::format("service '{}': {}", s.name, e.what()));
      }
    }
    if (timeout_node) {
      double seconds = 0;
      if (auto i = timeout_node->as_integer())
        seconds = static_cast<double>(i->get());
      else if (auto f = timeout_node->as_floating_point())
        seconds = f->get();
      else
        error_at(*timeout_node, fmt::format("`ready_timeout` must be a number of seconds, not {}",
                                            toml_type_name(timeout_node->type())));
      if (!(seconds > 0 && seconds <= kMaxReadyTimeoutSeconds))  // also refuses nan
        error_at(*timeout_node, fmt::format("service '{}': `ready_timeout` must be more than 0 and at most {} seconds",
                                            s.name, kMaxReadyTimeoutSeconds));
      s.ready_timeout = std::chrono::milliseconds(static_cast<int64_t>(std::ceil(seconds * 1000)));
    }
    return s;
  }
};

}  // namespace

std::string ReadyCheck::spec() const {
  switch (kind) {
    case Kind::kNone:
      return "";
    case Kind::kTcp:
      return fmt::format("tcp:{}", port);
    case Kind::kUnix:
      return "unix:" + path;
    case Kind::kCommand:
      return "command:" + command;
  }
  return "";
}

ReadyCheck parse_ready(std::string_view spec) {
  ReadyCheck r;
  if (spec.empty()) return r;
  auto bad = [&](std::string_view why) { fail("bad readiness check '{}': {}", spec, why); };
  if (spec.starts_with("tcp:")) {
    std::string_view digits = spec.substr(4);
    uint32_t port = 0;
    auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), port);
    if (digits.empty() || ec == std::errc::invalid_argument || end != digits.data() + digits.size())
      bad("the port must be a number from 1 to 65535");
    if (ec == std::errc::result_out_of_range || port == 0 || port > 65535) bad("the port must be from 1 to 65535");
    r.kind = ReadyCheck::Kind::kTcp;
    r.port = static_cast<uint16_t>(port);
  } else if (spec.starts_with("unix:") || spec.starts_with('/')) {
    fs::path path(spec.starts_with('/') ? spec : spec.substr(5));
    if (!path.is_absolute()) bad("the socket path must be absolute");
    r.kind = ReadyCheck::Kind::kUnix;
    r.path = path.lexically_normal().string();
    if (r.path.ends_with('/') || has_control_char(r.path)) bad("the socket path must name a file");
    if (r.path.size() > kMaxSocketPath)
      bad(fmt::format("the socket path is longer than the {} bytes a unix socket address holds", kMaxSocketPath));
  } else if (spec.starts_with("command:")) {
    r.kind = ReadyCheck::Kind::kCommand;
    r.command = spec.substr(8);
    if (trim(r.command).empty()) bad("the command is empty");
  } else {
    bad("use tcp:PORT, unix:/PATH (or just /PATH) or command:SHELL COMMAND");
  }
  return r;
}

Recipe parse_recipe(std::string_view text, const fs::path& file, const fs::path& os_release) {
  Recipe recipe;
  recipe.path = fs::absolute(file).lexically_normal();
  // No mirror: mmdebstrap's own choice, which for a Debian release adds its
  // -updates and -security suites (a mirror given here is used alone).
  recipe.mirror = "";
  Reader reader(file, recipe.path.parent_path());
  toml::table root = reader.parse(text);

  bool have_name = false, have_suite = false;
  for (auto [key, node] : in_file_order(root)) {
    std::string_view k = key->str();
    if (k == "name") {
      recipe.name = reader.string_of(*node, k);
      if (!valid_name(recipe.name))
        reader.error_at(*node, fmt::format("name '{}' must match [a-z0-9][a-z0-9._-]{{0,62}}", recipe.name));
      have_name = true;
    } else if (k == "suite") {
      recipe.suite = reader.string_of(*node, k);
      if (!valid_name(recipe.suite))
        reader.error_at(*node, fmt::format("suite '{}' is not a Debian suite or codename", recipe.suite));
      have_suite = true;
    } else if (k == "mirror") {
      recipe.mirror = reader.string_of(*node, k);
      if (!valid_mirror(recipe.mirror))
        reader.error_at(*node, fmt::format("mirror '{}' must be an http:// or https:// URL without spaces or commas",
                                           recipe.mirror));
    } else if (k == "packages") {
      for (auto& [package, item] : reader.strings_of(*node, k)) {
        if (!valid_package(package))
          reader.error_at(*item, fmt::format("packages: '{}' is not a Debian package name (optionally =VERSION); "
                                             "write one package per string",
                                             package));
        recipe.packages.push_back(std::move(package));
      }
    } else if (k == "size") {
      recipe.size_bytes = reader.size_of(*node);
    } else if (k == "run") {
      for (auto& [command, item] : reader.strings_of(*node, k)) recipe.run.push_back(std::move(command));
    } else if (k == "files") {
      recipe.files = reader.files_of(*node);
    } else if (k == "service") {
      recipe.services = reader.services_of(*node);
    } else {
      reader.unknown_key(*key, kRecipeKeys, "");
    }
  }

  if (!have_name) {
    recipe.name = file.stem().string();
    if (!valid_name(recipe.name))
      fail("{}: the file's name '{}' is not a valid image name ([a-z0-9][a-z0-9._-]{{0,62}}): set `name`",
           reader.display(), recipe.name);
  }
  if (!have_suite) {
    try {
      recipe.suite = host_suite(os_release);
    } catch (const Error& e) {
      fail("{}: {}", reader.display(), e.what());
    }
  }
  return recipe;
}

Recipe load_recipe(const fs::path& file, const fs::path& os_release) {
  std::optional<std::string> text = read_file_if_exists(file);
  if (!text) throw sys_error(ENOENT, "cannot read recipe " + file.string());
  return parse_recipe(*text, file, os_release);
}

std::string host_suite(const fs::path& os_release) {
  const char* advice = "set `suite` in the recipe (e.g. suite = \"bookworm\")";
  std::optional<std::string> text;
  try {
    text = read_file_if_exists(os_release);
  } catch (const Error& e) {
    fail("cannot tell the host's Debian suite: {}; {}", e.what(), advice);
  }
  if (!text) fail("cannot tell the host's Debian suite: {} does not exist; {}", os_release.string(), advice);
  std::map<std::string, std::string, std::less<>> fields;
  for (const std::string& line : split(*text, '\n')) {
    size_t eq = line.find('=');
    if (eq == std::string::npos) continue;
    std::string_view value = trim(std::string_view(line).substr(eq + 1));
    // os-release(5): values may be quoted; none we read needs unescaping.
    if (value.size() >= 2 && (value.front() == '"' || value.front() == '\'') && value.back() == value.front())
      value = value.substr(1, value.size() - 2);
    fields[std::string(trim(std::string_view(line).substr(0, eq)))] = std::string(value);
  }
  // Another distribution's codename means nothing to a Debian mirror.
  if (fields["ID"] != "debian")
    fail("cannot tell the host's Debian suite: the host is not Debian ({} says ID={}); {}", os_release.string(),
         fields["ID"], advice);
  const std::string& codename = fields["VERSION_CODENAME"];
  if (!valid_name(codename))
    fail("cannot tell the host's Debian suite: {} has no VERSION_CODENAME; {}", os_release.string(), advice);
  return codename;
}

}  // namespace kestrel::image
