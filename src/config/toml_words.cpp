#include "config/toml_words.hpp"

#include <fmt/format.h>

#include <algorithm>

#include "util/strings.hpp"

namespace kestrel::config {

std::vector<std::pair<const toml::key*, const toml::node*>> in_file_order(const toml::table& table) {
  std::vector<std::pair<const toml::key*, const toml::node*>> out;
  for (auto&& [key, node] : table) out.emplace_back(&key, &node);
  std::stable_sort(out.begin(), out.end(),
                   [](const auto& a, const auto& b) { return a.first->source().begin < b.first->source().begin; });
  return out;
}

std::string unknown_key_message(std::string_view key, std::span<const std::string_view> known, std::string_view where,
                                std::span<const std::string_view> top_level) {
  std::string message = fmt::format("unknown key '{}'{}", key, where);
  std::string_view best;
  size_t best_distance = 3;  // suggest only a near miss
  for (std::string_view k : known) {
    if (size_t d = edit_distance(key, k); d < best_distance) {
      best = k;
      best_distance = d;
    }
  }
  if (!where.empty() && std::ranges::find(top_level, key) != top_level.end())
    message += fmt::format(" ('{}' is a top-level key: put it before the first [table])", key);
  else if (!best.empty())
    message += fmt::format(" (did you mean '{}'?)", best);
  message += "; the keys are: ";
  for (size_t i = 0; i < known.size(); ++i) message += (i ? ", " : "") + std::string(known[i]);
  return message;
}

toml::table TomlReader::parse(std::string_view text) const {
  try {
    return toml::parse(text, display_);
  } catch (const toml::parse_error& e) {
    error_at(line_of(e.source()), e.description());
  }
}

void TomlReader::error_at(int line, std::string_view message) const {
  throw Error(fmt::format("{}:{}: {}", display_, line, message));
}

void TomlReader::error_at(const toml::node& node, std::string_view message) const {
  error_at(line_of(node.source()), message);
}

void TomlReader::unknown_key(const toml::key& key, std::span<const std::string_view> known,
                             std::string_view where) const {
  error_at(line_of(key.source()), unknown_key_message(key.str(), known, where, top_keys_));
}

std::string TomlReader::string_of(const toml::node& node, std::string_view key) const {
  if (auto s = node.as_string()) return s->get();
  error_at(node, fmt::format("`{}` must be a string, not {}", key, toml_type_name(node.type())));
}

bool TomlReader::bool_of(const toml::node& node, std::string_view key) const {
  if (auto b = node.as_boolean()) return b->get();
  error_at(node, fmt::format("`{}` must be true or false, not {}", key, toml_type_name(node.type())));
}

int64_t TomlReader::integer_of(const toml::node& node, std::string_view key) const {
  if (auto i = node.as_integer()) return i->get();
  error_at(node, fmt::format("`{}` must be an integer, not {}", key, toml_type_name(node.type())));
}

std::vector<std::pair<std::string, const toml::node*>> TomlReader::strings_of(const toml::node& node,
                                                                              std::string_view key) const {
  auto array = node.as_array();
  if (!array) error_at(node, fmt::format("`{}` must be a list of strings, not {}", key, toml_type_name(node.type())));
  std::vector<std::pair<std::string, const toml::node*>> out;
  for (const toml::node& item : *array) {
    auto s = item.as_string();
    if (!s)
      error_at(item, fmt::format("`{}` must be a list of strings, not hold {}", key, toml_type_name(item.type())));
    out.emplace_back(s->get(), &item);
  }
  return out;
}

std::vector<const toml::table*> TomlReader::tables_of(const toml::node& node, std::string_view key) const {
  auto array = node.as_array();
  if (!array || !std::ranges::all_of(*array, [](const toml::node& n) { return n.is_table(); }))
    error_at(node, fmt::format("`{0}` must be a list of tables: write each {0} as a [[{0}]] table", key));
  std::vector<const toml::table*> out;
  for (const toml::node& item : *array) out.push_back(item.as_table());
  return out;
}

void TomlReader::fill_fields(const toml::table& table, std::span<const std::string_view> known, std::string_view where,
                             std::span<const toml::node*> fields) const {
  for (auto [key, value] : in_file_order(table)) {
    auto it = std::ranges::find(known, key->str());
    if (it == known.end()) unknown_key(*key, known, where);
    fields[static_cast<size_t>(it - known.begin())] = value;
  }
}

}  // namespace kestrel::config
