#include "assets/modinfo.hpp"

#include <array>

#include "assets/archive.hpp"
#include "assets/elf.hpp"
#include "util/error.hpp"
#include "util/fs.hpp"
#include "util/strings.hpp"

namespace kestrel::assets {

namespace {

constexpr std::array<std::string_view, 4> kModuleSuffixes = {".ko", ".ko.xz", ".ko.zst", ".ko.gz"};

std::string_view module_suffix(std::string_view file_name) {
  for (std::string_view suffix : kModuleSuffixes)
    if (file_name.size() > suffix.size() && file_name.ends_with(suffix)) return suffix;
  return {};
}

}  // namespace

std::string normalize_module_name(std::string_view name) {
  std::string out(name);
  for (char& c : out)
    if (c == '-') c = '_';
  return out;
}

bool is_module_file(std::string_view file_name) { return !module_suffix(file_name).empty(); }

std::string module_name_from_file(std::string_view file_name) {
  size_t slash = file_name.rfind('/');
  if (slash != std::string_view::npos) file_name.remove_prefix(slash + 1);
  file_name.remove_suffix(module_suffix(file_name).size());
  return normalize_module_name(file_name);
}

ModInfo parse_modinfo(std::string_view module, std::string_view file_name) {
  ModInfo info;
  std::optional<std::string_view> section = elf::section(module, ".modinfo", file_name);
  if (section) {
    // NUL-separated "key=value" strings, with NUL padding between some.
    std::string_view rest = *section;
    while (!rest.empty()) {
      size_t end = rest.find('\0');
      std::string_view entry = rest.substr(0, end);
      rest = end == std::string_view::npos ? std::string_view() : rest.substr(end + 1);
      if (entry.starts_with("name=")) {
        info.name = normalize_module_name(entry.substr(5));
      } else if (entry.starts_with("depends=")) {
        for (const std::string& dep : split(entry.substr(8), ','))
          if (!trim(dep).empty()) info.depends.push_back(normalize_module_name(trim(dep)));
      }
    }
  }
  if (info.name.empty()) info.name = module_name_from_file(file_name);
  return info;
}

std::string read_module_file(const std::filesystem::path& path) {
  return decompress_if_compressed(read_file(path), path.string());
}

std::unordered_set<std::string> parse_modules_builtin(std::string_view text) {
  std::unordered_set<std::string> names;
  for (const std::string& line : split(text, '\n')) {
    std::string_view path = trim(line);
    if (!path.empty() && is_module_file(path)) names.insert(module_name_from_file(path));
  }
  return names;
}

}  // namespace kestrel::assets
