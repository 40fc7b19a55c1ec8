#include "topology/spec.hpp"

#include <toml++/toml.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <variant>

#include "config/keys.hpp"
#include "config/toml_words.hpp"
#include "topology/spec_check.hpp"
#include "util/error.hpp"
#include "util/fs.hpp"
#include "util/strings.hpp"

namespace kestrel::topology {
namespace {

using config::in_file_order;
using config::line_of;

// The keys a topology file knows, in the order the format lists them; an
// unknown key's error lists them.
constexpr std::string_view kTopKeys[] = {"name", "node", "link"};
constexpr std::string_view kNodeKeys[] = {"name", "image", "memory", "cpus", "share", "forward", "uplink"};
constexpr std::string_view kLinkKeys[] = {"nodes", "addresses"};

// "My Shop_2.toml" → "my-shop-2": the file's stem made a valid name.
std::string name_from_stem(const fs::path& file) {
  std::string name;
  for (char c : file.stem().string()) {
    char lower = (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
    name += is_lower_or_digit(lower) ? lower : '-';
  }
  name.erase(0, name.find_first_not_of('-'));  // a name starts with a letter or digit
  if (name.size() > kMaxNameLength) name.resize(kMaxNameLength);
  return name.empty() ? "topology" : name;
}

// Reads a topology file's TOML into a Spec; check_spec does the rest.
struct Reader : config::TomlReader {
  fs::path dir;  // the file's directory (absolute): the base of relative paths

  Reader(const fs::path& file, fs::path file_dir) : TomlReader(file.string(), kTopKeys), dir(std::move(file_dir)) {}

  // The topology's `name`.
  std::string name_of(const toml::node& node) const {
    std::string name = string_of(node, "name");
    if (!valid_name(name)) error_at(node, fmt::format("name \"{}\" must match [a-z0-9][a-z0-9-]{{0,31}}", name));
    return name;
  }

  NodeSpec node_of(const toml::table& table) const {
    auto [name, image, memory, cpus, share, forward, uplink] = fields_of(table, kNodeKeys, " in [[node]]");
    NodeSpec n;
    n.line = line_of(table.source());
    if (!name) error_at(table, "[[node]] has no `name`");
    n.name = string_of(*name, "name");
    checked(*name, [&] { check_node_name(n.name); });
    if (image) {
      n.image = string_of(*image, "image");
      if (n.image.empty()) error_at(*image, "`image` is empty: leave it out to run the node on the host's root");
      if (is_recipe_path(n.image)) n.image = (dir / n.image).lexically_normal().string();
      checked(*image, [&] { check_image(n.image); });
    }
    if (memory) {
      int64_t mib = integer_of(*memory, "memory");
      checked(*memory, [&] { check_memory(mib); });
      n.memory_mib = static_cast<uint32_t>(mib);
    }
    if (cpus) {
      int64_t count = integer_of(*cpus, "cpus");
      checked(*cpus, [&] { check_cpus(count); });
      n.cpus = static_cast<uint32_t>(count);
    }
    if (share) {
      for (auto& [text, item] : strings_of(*share, "share"))
        checked(*item, [&] { n.shares.push_back(normalize_share(text, dir)); });
    }
    if (forward) n.forward = bool_of(*forward, "forward");
    if (uplink) n.uplink = bool_of(*uplink, "uplink");
    return n;
  }

  LinkSpec link_of(const toml::table& table) const {
    auto [nodes, addresses] = fields_of(table, kLinkKeys, " in [[link]]");
    LinkSpec l;
    l.line = line_of(table.source());
    if (!nodes) error_at(table, "[[link]] has no `nodes`");
    auto names = strings_of(*nodes, "nodes");
    if (names.size() != 2) error_at(*nodes, fmt::format("`nodes` must name two nodes, not {}", names.size()));
    l.a = names[0].first;
    l.b = names[1].first;
    if (addresses) {
      auto texts = strings_of(*addresses, "addresses");
      if (texts.size() != 2)
        error_at(*addresses,
                 fmt::format("`addresses` must give two addresses, one for each of `nodes`, not {}", texts.size()));
      checked(*texts[0].second, [&] { l.addr_a = parse_address(texts[0].first); });
      checked(*texts[1].second, [&] { l.addr_b = parse_address(texts[1].first); });
    }
    return l;
  }
};

}  // namespace

// A share as the `share` configuration key takes it (the same check and
// normalization): "ABS_PATH:ro|rw". A relative path is taken from base_dir;
// with no base_dir (a spec built in code) it is an error.
std::string normalize_share(const std::string& share, const fs::path& base_dir) {
  static const config::Key* key = config::find_key("share");
  config::Value value;
  try {
    value = config::check_value(*key, config::Value(std::vector<std::string>{share}), base_dir.string());
  } catch (const Error& e) {
    fail("share: {}", e.what());
  }
  std::string normalized = std::get<std::vector<std::string>>(value).at(0);
  if (!normalized.starts_with('/')) fail("share: '{}': the path must be absolute", share);
  return normalized;
}

std::string format_ip(uint32_t ip) {
  return fmt::format("{}.{}.{}.{}", ip >> 24, (ip >> 16) & 0xff, (ip >> 8) & 0xff, ip & 0xff);
}

std::string Address::ip_str() const { return format_ip(ip); }

std::string Address::str() const { return fmt::format("{}/{}", ip_str(), prefix); }

uint32_t Address::netmask() const {
  if (prefix <= 0) return 0;
  if (prefix >= 32) return ~uint32_t{0};
  return ~uint32_t{0} << (32 - prefix);
}

bool overlaps(const Address& a, const Address& b) {
  Address wider = a.prefix <= b.prefix ? a : b;
  return (a.ip & wider.netmask()) == (b.ip & wider.netmask());
}

Address parse_address(const std::string& text) {
  auto bad = [&] { fail("\"{}\" is not an IPv4 address with a prefix length, like 10.9.0.1/24", text); };
  // A decimal number of 1 to 3 digits without a leading zero (which some
  // readers take for octal), or nullopt.
  auto number = [](std::string_view s) -> std::optional<uint32_t> {
    if (s.empty() || s.size() > 3 || (s.size() > 1 && s[0] == '0')) return std::nullopt;
    if (!std::ranges::all_of(s, [](char c) { return c >= '0' && c <= '9'; })) return std::nullopt;
    uint32_t value = 0;
    std::from_chars(s.data(), s.data() + s.size(), value);
    return value;
  };
  size_t slash = text.find('/');
  if (slash == std::string::npos) bad();
  std::vector<std::string> octets = split(std::string_view(text).substr(0, slash), '.');
  if (octets.size() != 4) bad();
  Address address;
  for (const std::string& octet : octets) {
    std::optional<uint32_t> value = number(octet);
    if (!value || *value > 255) bad();
    address.ip = (address.ip << 8) | *value;
  }
  std::optional<uint32_t> prefix = number(std::string_view(text).substr(slash + 1));
  if (!prefix) bad();
  if (*prefix < kMinPrefix || *prefix > kMaxPrefix)
    fail("\"{}\": the prefix length must be from {} to {}", text, kMinPrefix, kMaxPrefix);
  address.prefix = static_cast<int>(*prefix);
  return address;
}

Spec parse_spec(const std::string& text, const fs::path& file) {
  Spec spec;
  spec.file = fs::absolute(file).lexically_normal();
  Reader reader(file, spec.file.parent_path());
  toml::table root = reader.parse(text);
  bool have_name = false;
  for (auto [key, node] : in_file_order(root)) {
    std::string_view k = key->str();
    if (k == "name") {
      spec.name = reader.name_of(*node);
      have_name = true;
    } else if (k == "node") {
      for (const toml::table* table : reader.tables_of(*node, k)) spec.nodes.push_back(reader.node_of(*table));
    } else if (k == "link") {
      for (const toml::table* table : reader.tables_of(*node, k)) spec.links.push_back(reader.link_of(*table));
    } else {
      reader.unknown_key(*key, kTopKeys, "");
    }
  }
  if (!have_name) spec.name = name_from_stem(file);
  check_spec(spec, reader.display());
  return spec;
}

Spec load_spec(const fs::path& file) {
  std::optional<std::string> text = read_file_if_exists(file);
  if (!text) throw sys_error(ENOENT, "cannot read topology " + file.string());
  return parse_spec(*text, file);
}

}  // namespace kestrel::topology
