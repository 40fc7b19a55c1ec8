#include "topology/spec.hpp"

#include <sys/stat.h>
#include <toml++/toml.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <map>
#include <variant>

#include "config/keys.hpp"
#include "config/toml_words.hpp"
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
// Node names become directories in the deployment directory, beside these.
constexpr std::string_view kReservedNames[] = {"program", "links"};

constexpr size_t kMaxNameLength = 32;
constexpr int64_t kMinMemory = 64, kMaxMemory = 1048576;  // MiB
constexpr int64_t kMinCpus = 1, kMaxCpus = 64;
constexpr int kMinPrefix = 8, kMaxPrefix = 30;
// Links without addresses get 10.42.N.0/24, N from 1 to 255.
constexpr uint32_t kAutoBase = 0x0a2a0000;  // 10.42.0.0
constexpr int kLastAutoSubnet = 255;

bool is_lower_or_digit(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); }

// Topology and node names become host names and file names.
bool valid_name(std::string_view s) {
  if (s.empty() || s.size() > kMaxNameLength || !is_lower_or_digit(s[0])) return false;
  return std::all_of(s.begin(), s.end(), [](char c) { return is_lower_or_digit(c) || c == '-'; });
}

bool has_control_char_or_space(std::string_view s) {
  return std::any_of(s.begin(), s.end(), [](char c) { return static_cast<unsigned char>(c) <= 0x20 || c == 0x7f; });
}

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

// The checks of one field, shared by the file reader (which adds the line of
// the value) and check_spec (which adds the node). They throw Error.

void check_node_name(const std::string& name) {
  if (std::ranges::find(kReservedNames, name) != std::end(kReservedNames)) fail("node name \"{}\" is reserved", name);
  if (!valid_name(name)) fail("node name \"{}\" must match [a-z0-9][a-z0-9-]{{0,31}}", name);
}

void check_memory(int64_t mib) {
  if (mib < kMinMemory || mib > kMaxMemory)
    fail("`memory` {} is out of range: from {} to {} (MiB)", mib, kMinMemory, kMaxMemory);
}

void check_cpus(int64_t cpus) {
  if (cpus < kMinCpus || cpus > kMaxCpus) fail("`cpus` {} is out of range: from {} to {}", cpus, kMinCpus, kMaxCpus);
}

// As the `image` configuration key: a value ending in ".toml" or holding a
// '/' is a recipe's path; anything else an image's name or id.
bool is_recipe_path(std::string_view image) {
  return image.ends_with(".toml") || image.find('/') != std::string_view::npos;
}

void check_recipe_path(const fs::path& path) {
  if (!path.is_absolute()) fail("image recipe \"{}\" must be an absolute path", path.string());
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) throw sys_error(errno, "image recipe " + path.string());
  if (!S_ISREG(st.st_mode)) fail("image recipe {} is not a file", path.string());
}

void check_image(const std::string& image) {
  if (image.empty()) return;  // the host's root
  if (is_recipe_path(image)) return check_recipe_path(image);
  if (has_control_char_or_space(image)) fail("image \"{}\" is not an image name or id", image);
}

uint32_t broadcast_of(const Address& a) { return a.network() | ~a.netmask(); }

// Not for a NIC: "this network" (0/8), loopback (127/8), multicast and
// reserved (224/3).
bool is_unicast(uint32_t ip) {
  uint32_t first = ip >> 24;
  return first != 0 && first != 127 && first < 224;
}

Address subnet_of(const Address& a) { return Address{a.network(), a.prefix}; }

// The subnets 10.42.N.0/24 in turn that overlap no given subnet.
class AutoSubnets {
 public:
  explicit AutoSubnets(const Spec& spec) {
    for (const LinkSpec& link : spec.links) {
      if (link.addr_a) given_.push_back(*link.addr_a);
      if (link.addr_b) given_.push_back(*link.addr_b);
    }
  }
  // The next free one; nullopt when none is left.
  std::optional<Address> next() {
    while (++n_ <= kLastAutoSubnet) {
      Address subnet{kAutoBase | (static_cast<uint32_t>(n_) << 8), 24};
      if (std::ranges::none_of(given_, [&](const Address& g) { return overlaps(subnet, g); })) return subnet;
    }
    return std::nullopt;
  }

 private:
  std::vector<Address> given_;
  int n_ = 0;
};

// check_spec, with the file as its messages name it ("" for a spec built in
// code: then they start with "nodes[I]: " or "links[I]: ").
class Checker {
 public:
  Checker(const Spec& spec, std::string display) : spec_(spec), display_(std::move(display)) {}

  void run() {
    if (!spec_.name.empty() && !valid_name(spec_.name))
      spec_error(fmt::format("topology name \"{}\" must match [a-z0-9][a-z0-9-]{{0,31}}", spec_.name));
    if (spec_.nodes.empty())
      spec_error(display_.empty() ? "the topology has no nodes" : "the topology has no nodes: add a [[node]] table");
    for (size_t i = 0; i < spec_.nodes.size(); ++i) check_node(i);
    for (size_t i = 0; i < spec_.links.size(); ++i) check_link(i);
    AutoSubnets auto_subnets(spec_);
    for (size_t i = 0; i < spec_.links.size(); ++i) {
      if (!spec_.links[i].addr_a && !auto_subnets.next())
        link_error(i, fmt::format("link {} gets no address: every 10.42.N.0/24 (N from 1 to {}) overlaps a given "
                                  "subnet; give its addresses",
                                  link_name(i), kLastAutoSubnet));
    }
  }

 private:
  const Spec& spec_;
  std::string display_;
  std::map<std::string, size_t, std::less<>> node_index_;
  std::map<std::pair<size_t, size_t>, size_t> link_of_pair_;
  std::vector<size_t> links_of_node_ = std::vector<size_t>(spec_.nodes.size());

  // "PATH:LINE: ", or where a spec built in code has it: "links[2]: ".
  std::string at(int line, std::string_view table, size_t index) const {
    if (!display_.empty() && line > 0) return fmt::format("{}:{}: ", display_, line);
    if (!display_.empty()) return fmt::format("{}: {}[{}]: ", display_, table, index);
    return fmt::format("{}[{}]: ", table, index);
  }
  // Another node or link in a message: "line 3", or "links[0]".
  std::string ref(int line, std::string_view table, size_t index) const {
    if (!display_.empty() && line > 0) return fmt::format("line {}", line);
    return fmt::format("{}[{}]", table, index);
  }
  std::string ref_node(size_t i) const { return ref(spec_.nodes[i].line, "nodes", i); }
  std::string ref_link(size_t i) const { return ref(spec_.links[i].line, "links", i); }
  // "on line 3", or "in links[0]".
  std::string on(const std::string& reference) const {
    return reference.starts_with("line ") ? "on " + reference : "in " + reference;
  }

  [[noreturn]] void spec_error(const std::string& message) const {
    throw Error(display_.empty() ? message : fmt::format("{}: {}", display_, message));
  }
  [[noreturn]] void node_error(size_t i, const std::string& message) const {
    throw Error(at(spec_.nodes[i].line, "nodes", i) + message);
  }
  [[noreturn]] void link_error(size_t i, const std::string& message) const {
    throw Error(at(spec_.links[i].line, "links", i) + message);
  }

  std::string link_name(size_t i) const { return spec_.links[i].a + "-" + spec_.links[i].b; }

  std::string node_names() const {
    std::string out;
    for (const NodeSpec& node : spec_.nodes) out += (out.empty() ? "" : ", ") + node.name;
    return out;
  }

  void check_node(size_t i) {
    const NodeSpec& node = spec_.nodes[i];
    if (i == kMaxNodes)
      node_error(i, fmt::format("node \"{}\" is one too many: a topology has at most {} nodes", node.name, kMaxNodes));
    try {
      check_node_name(node.name);
      if (node.memory_mib != 0) check_memory(node.memory_mib);
      if (node.cpus != 0) check_cpus(node.cpus);
      for (const std::string& share : node.shares) normalize_share(share, "");
      check_image(node.image);
    } catch (const Error& e) {
      node_error(i, e.what());
    }
    if (auto [it, fresh] = node_index_.emplace(node.name, i); !fresh)
      node_error(i, fmt::format("node \"{}\" is declared twice (first {})", node.name, on(ref_node(it->second))));
  }

  size_t end_index(size_t link, const std::string& name) const {
    auto it = node_index_.find(name);
    if (it == node_index_.end())
      link_error(link,
                 fmt::format("link {} names unknown node \"{}\" (nodes: {})", link_name(link), name, node_names()));
    return it->second;
  }

  void check_link(size_t i) {
    const LinkSpec& link = spec_.links[i];
    std::string name = link_name(i);
    if (i == kMaxLinks)
      link_error(i, fmt::format("link {} is one too many: a topology has at most {} links", name, kMaxLinks));
    size_t a = end_index(i, link.a), b = end_index(i, link.b);
    if (a == b) link_error(i, fmt::format("link {} names node \"{}\" twice", name, link.a));
    if (auto [it, fresh] = link_of_pair_.emplace(std::minmax(a, b), i); !fresh)
      link_error(i, fmt::format("link {} joins the same nodes as link {} ({})", name, link_name(it->second),
                                ref_link(it->second)));
    for (size_t end : {a, b}) {
      if (++links_of_node_[end] > kMaxLinksPerNode)
        link_error(i, fmt::format("link {} gives node \"{}\" link number {}: a node has at most {} links", name,
                                  spec_.nodes[end].name, links_of_node_[end], kMaxLinksPerNode));
    }
    if (link.addr_a.has_value() != link.addr_b.has_value())
      link_error(i, fmt::format("link {} has an address for one end only: give both or neither", name));
    if (link.addr_a) check_addresses(i, *link.addr_a, *link.addr_b);
  }

  void check_addresses(size_t i, const Address& a, const Address& b) {
    std::string name = link_name(i);
    for (const Address& x : {a, b}) {
      if (x.prefix < kMinPrefix || x.prefix > kMaxPrefix)
        link_error(i, fmt::format("link {}'s address {} has a prefix length outside {} to {}", name, x.str(),
                                  kMinPrefix, kMaxPrefix));
      if (!is_unicast(x.ip))
        link_error(i, fmt::format("link {}'s address {} is not a unicast address (0/8, 127/8 and 224/3 are not)", name,
                                  x.str()));
    }
    if (a.prefix != b.prefix || a.network() != b.network())
      link_error(i, fmt::format("link {}'s ends {} and {} are in different subnets", name, a.str(), b.str()));
    for (const Address& x : {a, b}) {
      if (x.ip == x.network())
        link_error(i, fmt::format("link {}'s address {} is the subnet's network address", name, x.str()));
      if (x.ip == broadcast_of(x))
        link_error(i, fmt::format("link {}'s address {} is the subnet's broadcast address", name, x.str()));
    }
    if (a.ip == b.ip) link_error(i, fmt::format("link {} gives both ends the address {}", name, a.ip_str()));
    Address subnet = subnet_of(a);
    for (size_t j = 0; j < i; ++j) {
      const LinkSpec& other = spec_.links[j];
      if (!other.addr_a || !other.addr_b) continue;
      for (const Address& x : {a, b}) {
        for (const Address& y : {*other.addr_a, *other.addr_b}) {
          if (x.ip == y.ip)
            link_error(i, fmt::format("address {} is given twice (also {})", x.ip_str(), on(ref_link(j))));
        }
      }
      if (overlaps(subnet, *other.addr_a))
        link_error(i, fmt::format("link {}'s subnet {} overlaps link {}'s {} ({})", name, subnet.str(), link_name(j),
                                  subnet_of(*other.addr_a).str(), ref_link(j)));
    }
    auto uplink = std::ranges::find_if(spec_.nodes, [](const NodeSpec& n) { return n.uplink; });
    if (uplink != spec_.nodes.end() && overlaps(subnet, kUplinkNetwork))
      link_error(i, fmt::format("link {}'s subnet {} overlaps the uplink network {} (node \"{}\" has uplink = true)",
                                name, subnet.str(), kUplinkNetwork.str(), uplink->name));
  }
};

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
  Checker(spec, reader.display()).run();
  return spec;
}

Spec load_spec(const fs::path& file) {
  std::optional<std::string> text = read_file_if_exists(file);
  if (!text) throw sys_error(ENOENT, "cannot read topology " + file.string());
  return parse_spec(*text, file);
}

void check_spec(const Spec& spec) { Checker(spec, spec.file.empty() ? "" : spec.file.string()).run(); }

std::vector<std::pair<Address, Address>> link_addresses(const Spec& spec) {
  AutoSubnets auto_subnets(spec);
  std::vector<std::pair<Address, Address>> out;
  for (const LinkSpec& link : spec.links) {
    if (link.addr_a && link.addr_b) {
      out.emplace_back(*link.addr_a, *link.addr_b);
      continue;
    }
    std::optional<Address> subnet = auto_subnets.next();
    if (!subnet) fail("link {}-{} gets no address: no 10.42.N.0/24 is free", link.a, link.b);
    out.emplace_back(Address{subnet->ip | 1, 24}, Address{subnet->ip | 2, 24});
  }
  return out;
}

}  // namespace kestrel::topology
