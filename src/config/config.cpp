#include "config/config.hpp"

#include <cstdlib>

#include "util/error.hpp"

namespace kestrel::config {

std::string describe_origin(const Origin& origin) {
  switch (origin.source) {
    case Source::kDefault:
      return "default";
    case Source::kUserFile:
      return "user file " + origin.where;
    case Source::kProjectFile:
      return "project file " + origin.where;
    case Source::kEnvironment:
      return "environment " + origin.where;
    case Source::kCommandLine:
      return "command line " + origin.where;
  }
  return "?";
}

std::string display_path(const std::filesystem::path& file, const std::filesystem::path& cwd) {
  std::filesystem::path rel = file.lexically_relative(cwd);
  if (rel.empty() || *rel.begin() == "..") return file.string();
  return rel.string();
}

Config Config::load(const Sources& sources, std::vector<std::string>* problems) {
  Config c;
  std::string cwd = sources.cwd.string();
  for (const Key& k : keys()) c.entries_.push_back({&k, parse_text(k, k.fallback, cwd), {}});
  // Throws, or with `problems` records and goes on.
  auto report = [&](const std::string& message) {
    if (!problems) throw Error(message);
    problems->push_back(message);
  };

  auto apply_file = [&](const std::filesystem::path& path, Source source) {
    std::string display = display_path(path, sources.cwd);
    std::vector<FileSetting> settings;
    try {
      settings = read_config_file(path, display);
    } catch (const Error& e) {
      return report(e.what());  // all of the file or none of it
    }
    for (FileSetting& s : settings) {
      Entry& e = c.mutable_entry(s.key->name);
      e.value = std::move(s.value);
      e.origin = {source, fmt::format("{}:{}", display, s.line)};
    }
  };

  c.user_file_ = user_file_path(sources.getenv);
  if (c.user_file_) {
    std::error_code ec;
    c.user_file_exists_ = std::filesystem::is_regular_file(*c.user_file_, ec);
    if (c.user_file_exists_) apply_file(*c.user_file_, Source::kUserFile);
  }
  c.project_file_ = find_project_file(sources.cwd);
  if (c.project_file_) apply_file(*c.project_file_, Source::kProjectFile);

  for (Entry& e : c.entries_) {
    const char* text = sources.getenv(e.key->env);
    if (!text || !*text) continue;  // an empty variable counts as unset
    try {
      e.value = parse_text(*e.key, text, cwd);
    } catch (const Error& err) {
      report(fmt::format("{}={}: {}", e.key->env, text, err.what()));
      continue;
    }
    e.origin = {Source::kEnvironment, e.key->env};
  }
  return c;
}

Config Config::load(const Sources& sources) { return load(sources, nullptr); }

Config Config::load_lenient(const Sources& sources, std::vector<std::string>& problems) {
  return load(sources, &problems);
}

namespace {

Sources real_sources() {
  std::error_code ec;
  std::filesystem::path cwd = std::filesystem::current_path(ec);
  if (ec) fail("cannot find the current directory: {}", ec.message());
  return {cwd, [](const char* name) { return static_cast<const char*>(std::getenv(name)); }};
}

}  // namespace

Config Config::load() { return load(real_sources(), nullptr); }

Config Config::load_lenient(std::vector<std::string>& problems) { return load(real_sources(), &problems); }

void Config::set_from_command_line(std::string_view key, std::string_view text, std::string_view option) {
  Entry& e = mutable_entry(key);
  std::error_code ec;
  e.value = parse_text(*e.key, text, std::filesystem::current_path(ec).string());
  e.origin = {Source::kCommandLine, std::string(option)};
}

const Entry& Config::entry(std::string_view key) const {
  for (const Entry& e : entries_)
    if (key == e.key->name) return e;
  fail("internal error: no configuration key '{}'", key);
}

Entry& Config::mutable_entry(std::string_view key) { return const_cast<Entry&>(entry(key)); }

namespace {

template <typename T>
const T& get(const Entry& e) {
  if (auto v = std::get_if<T>(&e.value)) return *v;
  fail("internal error: configuration key '{}' read with the wrong type", e.key->name);
}

}  // namespace

int64_t Config::count(std::string_view key) const { return get<int64_t>(entry(key)); }
double Config::seconds(std::string_view key) const { return get<double>(entry(key)); }
bool Config::flag(std::string_view key) const { return get<bool>(entry(key)); }
const std::string& Config::text(std::string_view key) const { return get<std::string>(entry(key)); }
const std::vector<std::string>& Config::list(std::string_view key) const {
  return get<std::vector<std::string>>(entry(key));
}

}  // namespace kestrel::config
