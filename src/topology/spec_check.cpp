// Checking a topology spec, read from a file or built in code, before
// anything starts (spec.hpp lists the checks); and each link's addresses,
// which follow the rule the check of free subnets applies (AutoSubnets).
#include "topology/spec_check.hpp"

#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <map>

#include "util/error.hpp"
#include "util/fs.hpp"

namespace kestrel::topology {
namespace {

// Node names become directories in the deployment directory, beside these.
constexpr std::string_view kReservedNames[] = {"program", "links"};

constexpr int64_t kMinMemory = 64, kMaxMemory = 1048576;  // MiB
constexpr int64_t kMinCpus = 1, kMaxCpus = 64;
// Links without addresses get 10.42.N.0/24, N from 1 to 255.
constexpr uint32_t kAutoBase = 0x0a2a0000;  // 10.42.0.0
constexpr int kLastAutoSubnet = 255;

bool has_control_char_or_space(std::string_view s) {
  return std::any_of(s.begin(), s.end(), [](char c) { return static_cast<unsigned char>(c) <= 0x20 || c == 0x7f; });
}

void check_recipe_path(const fs::path& path) {
  if (!path.is_absolute()) fail("image recipe \"{}\" must be an absolute path", path.string());
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) throw sys_error(errno, "image recipe " + path.string());
  if (!S_ISREG(st.st_mode)) fail("image recipe {} is not a file", path.string());
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

}  // namespace

bool is_lower_or_digit(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); }

bool valid_name(std::string_view s) {
  if (s.empty() || s.size() > kMaxNameLength || !is_lower_or_digit(s[0])) return false;
  return std::all_of(s.begin(), s.end(), [](char c) { return is_lower_or_digit(c) || c == '-'; });
}

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

bool is_recipe_path(std::string_view image) {
  return image.ends_with(".toml") || image.find('/') != std::string_view::npos;
}

void check_image(const std::string& image) {
  if (image.empty()) return;  // the host's root
  if (is_recipe_path(image)) return check_recipe_path(image);
  if (has_control_char_or_space(image)) fail("image \"{}\" is not an image name or id", image);
}

void check_spec(const Spec& spec, const std::string& display) { Checker(spec, display).run(); }

void check_spec(const Spec& spec) { check_spec(spec, spec.file.empty() ? "" : spec.file.string()); }

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
