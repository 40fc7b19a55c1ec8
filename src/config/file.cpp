#include "config/file.hpp"

#include <toml++/toml.h>

#include "config/toml_words.hpp"
#include "util/error.hpp"
#include "util/fs.hpp"

namespace kestrel::config {

std::optional<std::filesystem::path> find_project_file(const std::filesystem::path& start) {
  std::error_code ec;
  for (std::filesystem::path dir = start;; dir = dir.parent_path()) {
    std::filesystem::path candidate = dir / kProjectFileName;
    if (std::filesystem::is_regular_file(candidate, ec)) return candidate;
    if (dir == dir.parent_path() || dir.empty()) return std::nullopt;
  }
}

std::optional<std::filesystem::path> user_file_path(const GetEnv& getenv) {
  // The XDG spec says relative values are invalid and must be ignored.
  if (const char* xdg = getenv("XDG_CONFIG_HOME"); xdg && xdg[0] == '/')
    return std::filesystem::path(xdg) / "kestrel" / "config.toml";
  if (const char* home = getenv("HOME"); home && *home)
    return std::filesystem::path(home) / ".config" / "kestrel" / "config.toml";
  return std::nullopt;
}

namespace {

// The node as a Value of the key's type, or nullopt when the TOML type does
// not fit (the caller reports it).
std::optional<Value> to_value(const Key& key, const toml::node& node) {
  switch (key.type) {
    case Type::kCount:
      if (auto v = node.as_integer()) return Value(v->get());
      return std::nullopt;
    case Type::kSeconds:
      if (auto v = node.as_integer()) return Value(static_cast<double>(v->get()));
      if (auto v = node.as_floating_point()) return Value(v->get());
      return std::nullopt;
    case Type::kSwitch:
      if (auto v = node.as_boolean()) return Value(v->get());
      return std::nullopt;
    case Type::kText:
    case Type::kChoice:
      if (auto v = node.as_string()) return Value(v->get());
      return std::nullopt;
    case Type::kPatterns:
    case Type::kShares:
    case Type::kTrees: {
      auto array = node.as_array();
      if (!array) return std::nullopt;
      std::vector<std::string> items;
      for (const toml::node& item : *array) {
        auto s = item.as_string();
        if (!s) return std::nullopt;
        items.push_back(s->get());
      }
      return Value(std::move(items));
    }
  }
  return std::nullopt;
}

struct Reader {
  const std::string& display;
  std::string base_dir;
  std::vector<FileSetting> out;

  [[noreturn]] void error_at(int line, const std::string& message) const {
    throw Error(fmt::format("{}:{}: {}", display, line, message));
  }

  void walk(const toml::table& table, const std::string& prefix) {
    for (auto&& [name, node] : table) {
      std::string full = prefix + std::string(name.str());
      const Key* key = find_key(full);
      if (!key && node.is_table()) {
        walk(*node.as_table(), full + ".");
        continue;
      }
      if (!key) {
        std::string message = fmt::format("unknown key '{}'", full);
        std::string leaf(name.str());
        if (!prefix.empty() && find_key(leaf))
          message += fmt::format(" ('{}' is a top-level key: put it before the first [table])", leaf);
        else if (std::string best = suggest_key(full); !best.empty())
          message += fmt::format(" (did you mean '{}'?)", best);
        error_at(line_of(name.source()), message + "; `kestrel config --keys` lists the keys");
      }
      int line = line_of(node.source());
      auto value = to_value(*key, node);
      if (!value)
        error_at(line, fmt::format("{}: expected {}, got {}", full, describe_type(*key), toml_type_name(node.type())));
      try {
        out.push_back({key, check_value(*key, std::move(*value), base_dir), line});
      } catch (const Error& e) {
        error_at(line, fmt::format("{}: {}", full, e.what()));
      }
    }
  }
};

}  // namespace

std::vector<FileSetting> parse_file_text(const std::string& text, const std::filesystem::path& path,
                                         const std::string& display) {
  Reader reader{display, path.parent_path().string(), {}};
  toml::table root;
  try {
    root = toml::parse(text, path.string());
  } catch (const toml::parse_error& e) {
    reader.error_at(line_of(e.source()), std::string(e.description()));
  }
  reader.walk(root, "");
  return std::move(reader.out);
}

std::vector<FileSetting> read_config_file(const std::filesystem::path& path, const std::string& display) {
  return parse_file_text(read_file(path), path, display);
}

}  // namespace kestrel::config
