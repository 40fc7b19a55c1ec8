#include "cli/config_options.hpp"

#include <filesystem>

#include "util/error.hpp"

namespace kestrel::cli {

namespace {

std::string option_help(const config::Key& key) {
  std::string fallback = key.fallback;
  std::string where = fmt::format("kestrel.toml: {}, env: {}", key.name, key.env);
  if (*key.flag_sets) return fmt::format("{}: sets {} = {} ({})", key.flag_help, key.name, key.flag_sets, where);
  std::string help = key.help;
  if (key.type == config::Type::kShares || key.type == config::Type::kTrees) help += "; repeatable";
  if (!fallback.empty()) return fmt::format("{} (default {}; {})", help, fallback, where);
  return fmt::format("{} ({})", help, where);
}

}  // namespace

ConfigOptions::ConfigOptions(CLI::App& app) {
  for (const config::Key& key : config::keys()) {
    if (!*key.option) continue;
    Bound& b = bound_.emplace_back(Bound{&key});
    if (*key.flag_sets) {
      b.option = app.add_flag(key.option, b.flag, option_help(key));
      continue;
    }
    const config::Key* k = &key;
    auto check = [k](const std::string& text) -> std::string {
      try {
        std::error_code ec;
        config::parse_text(*k, text, std::filesystem::current_path(ec).string());
        return "";
      } catch (const Error& e) {
        return e.what();
      }
    };
    b.option = app.add_option(key.option, b.values, option_help(key))
                   ->type_name(config::value_placeholder(key))
                   ->type_size(1)
                   ->expected(1)
                   ->allow_extra_args(false)
                   ->check(check);
    if (key.type == config::Type::kShares || key.type == config::Type::kTrees)
      b.option->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
    else
      b.option->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
  }
}

void ConfigOptions::apply(config::Config& config) const {
  for (const Bound& b : bound_) {
    if (b.option->count() == 0) continue;
    if (b.flag) {
      config.set_from_command_line(b.key->name, b.key->flag_sets, b.key->option);
      continue;
    }
    std::string text;
    for (const auto& v : b.values) text += (text.empty() ? "" : ",") + v;
    config.set_from_command_line(b.key->name, text, b.key->option);
  }
}

config::Config load_config(const ConfigOptions& options) {
  config::Config config = config::Config::load();
  options.apply(config);
  return config;
}

}  // namespace kestrel::cli
