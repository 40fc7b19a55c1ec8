#include "config/reference.hpp"

#include <fmt/format.h>

#include "config/keys.hpp"

namespace kestrel::config {

namespace {

std::string option_of(const Key& k) {
  if (*k.flag_sets) return fmt::format("{} (sets {})", k.option, k.flag_sets);
  return k.option;
}

std::string md_escape(std::string_view s) {
  std::string out;
  for (char c : s) {
    if (c == '|') out += '\\';
    out += c;
  }
  return out;
}

}  // namespace

std::string key_reference_text() {
  std::string out;
  for (const Key& k : keys()) {
    out += fmt::format("{}\n  {}\n  type: {}; default: {}; env: {}; run option: {}\n", k.name, k.help, describe_type(k),
                       *k.fallback ? k.fallback : "(empty)", k.env, *k.option ? option_of(k) : "-");
  }
  out += "\nenvironment only (no file key):\n";
  for (const EnvOnly& e : environment_only()) out += fmt::format("  {:<20} {}\n", e.name, e.help);
  return out;
}

std::string key_reference_markdown() {
  std::string out =
      "| key | type | default | environment | `kestrel run` option | meaning |\n"
      "|---|---|---|---|---|---|\n";
  for (const Key& k : keys()) {
    out += fmt::format("| `{}` | {} | {} | `{}` | {} | {} |\n", k.name, md_escape(describe_type(k)),
                       *k.fallback ? "`" + md_escape(k.fallback) + "`" : "(empty)", k.env,
                       *k.option ? "`" + option_of(k) + "`" : "", md_escape(k.help));
  }
  out += "\n| environment only | meaning |\n|---|---|\n";
  for (const EnvOnly& e : environment_only()) out += fmt::format("| `{}` | {} |\n", e.name, md_escape(e.help));
  return out;
}

}  // namespace kestrel::config
