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

}  // namespace kestrel::config
