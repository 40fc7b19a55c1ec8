// Topologies (docs/topologies.md): several VMs ("nodes") linked point to
// point, described in a TOML file or built in code, checked and planned
// before anything starts.
//
//   name = "shop"                 # optional; default: the file's stem,
//                                 # lowercased, other characters than
//                                 # [a-z0-9-] made '-', at most 32.
//                                 # [a-z0-9][a-z0-9-]{0,31}
//   [[node]]
//   name = "db"                   # required, [a-z0-9][a-z0-9-]{0,31}, unique;
//                                 # "program" and "links" are reserved
//   image = "images/pg.toml"      # optional: a recipe (relative to this file)
//                                 # or a built image's name/id; default: the
//                                 # host's root, read-only
//   memory = 512                  # optional MiB (64..1048576); default: config
//   cpus = 1                      # optional (1..64); default: config
//   share = ["/srv/data:ro"]      # optional, as the `share` config key
//   forward = true                # optional: the node routes between its links
//   uplink = true                 # optional: a user-mode NIC to the outside
//                                 # (QEMU -netdev user: 10.0.2.15/24, gateway
//                                 # 10.0.2.2, DNS 10.0.2.3; no root)
//
//   [[link]]
//   nodes = ["app", "db"]         # required: two different nodes
//   addresses = ["10.9.0.1/24", "10.9.0.2/24"]   # optional, in the order of
//                                 # `nodes`; default: 10.42.N.1/24 and
//                                 # 10.42.N.2/24, N the first free subnet
//
// Unknown keys and wrong types are errors; every error is "PATH:LINE: message"
// (the line of the [[node]] or [[link]] for what concerns the whole table;
// "PATH: message" for the file as a whole, e.g. no nodes). Checked before
// anything starts: duplicate node names, a link naming an unknown node or one
// node twice, two links between the same pair of nodes, an address given
// twice, two links whose subnets overlap (or overlap 10.0.2.0/24 while a node
// has an uplink), link ends in different subnets, network or broadcast
// addresses, addresses outside unicast (0/8, 127/8, 224/3); at least one and
// at most 16 nodes, at most 32 links, at most 8 links on one node (the uplink
// is a NIC of its own on top).
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "vm/qemu.hpp"

namespace kestrel::topology {

// Limits (the checks above).
inline constexpr size_t kMaxNodes = 16;
inline constexpr size_t kMaxLinks = 32;
inline constexpr size_t kMaxLinksPerNode = 8;

// An IPv4 interface address, host byte order.
struct Address {
  uint32_t ip = 0;
  int prefix = 24;  // 8..30 on a NIC; 0 for the default route's destination

  std::string str() const;     // "10.42.1.1/24"
  std::string ip_str() const;  // "10.42.1.1"
  uint32_t netmask() const;    // 0xffffff00 for /24
  uint32_t network() const { return ip & netmask(); }
  bool operator==(const Address&) const = default;
};

// "10.9.0.1/24" → Address; throws Error (no PATH:LINE) when malformed or the
// prefix is outside 8..30. Strict: four decimal octets 0..255 without signs,
// spaces or leading zeros, and a prefix length.
Address parse_address(const std::string& text);

// "10.0.2.2": an address in host byte order, without a prefix.
std::string format_ip(uint32_t ip);

// Whether two subnets share an address (one holds the other).
bool overlaps(const Address& a, const Address& b);

// The user-mode uplink (QEMU -netdev user): the network, the guest's
// address, its gateway and its DNS server.
inline constexpr Address kUplinkNetwork{vm::kUserNetwork, vm::kUserNetworkPrefix};  // 10.0.2.0/24
inline constexpr Address kUplinkAddress{vm::kUserAddress, vm::kUserNetworkPrefix};  // 10.0.2.15/24
inline constexpr uint32_t kUplinkGateway = vm::kUserGateway;                        // 10.0.2.2
inline constexpr const char* kUplinkDns = vm::kUserDns;

struct NodeSpec {
  std::string name;
  std::string image;        // "": the host's root; else a recipe path (absolute) or an image name/id
  uint32_t memory_mib = 0;  // 0: the configuration's
  uint32_t cpus = 0;        // 0: the configuration's
  // "PATH[:ro|:rw]", as the `share` key; PATH absolute (a file's are
  // normalized to "PATH:ro" or "PATH:rw", relative ones taken from its directory)
  std::vector<std::string> shares;
  bool forward = false;
  bool uplink = false;
  int line = 0;  // where it was declared: its [[node]] (0: built in code)
};

struct LinkSpec {
  std::string a, b;                       // node names
  std::optional<Address> addr_a, addr_b;  // both or neither
  int line = 0;                           // its [[link]] (0: built in code)
};

struct Spec {
  std::string name;
  std::filesystem::path file;  // "" when built in code
  std::vector<NodeSpec> nodes;
  std::vector<LinkSpec> links;
};

// A share as the `share` configuration key takes it, checked and normalized
// ("ABS_PATH:ro|rw"); a relative path is taken from base_dir ("": an error).
std::string normalize_share(const std::string& share, const std::filesystem::path& base_dir);

// Reads and checks a topology file. Throws Error "PATH:LINE: message".
Spec load_spec(const std::filesystem::path& file);
// The same from text (`file` names it in messages and anchors relative image paths).
Spec parse_spec(const std::string& text, const std::filesystem::path& file);
// Checks a spec (also one built in code: errors then start "nodes[I]: " or
// "links[I]: " instead of "PATH:LINE: ", I the index in Spec::nodes or
// Spec::links). An empty name is accepted (the caller picks one); a code-built
// spec's shares and recipe paths must be absolute. Throws Error.
void check_spec(const Spec& spec);

// Each link's two addresses (in the order a, b): the given ones, else
// 10.42.N.1/24 and 10.42.N.2/24 with N = 1, 2, ... skipping every N whose
// 10.42.N.0/24 overlaps a given subnet. Expects check_spec(spec) to have passed.
std::vector<std::pair<Address, Address>> link_addresses(const Spec& spec);

// One NIC of a node, in the order the node's QEMU gets them: its links in
// the order of Spec::links, then the uplink.
struct Nic {
  int link = -1;     // index into Spec::links; -1 for the uplink
  std::string peer;  // the node at the other end ("" for the uplink)
  std::string mac;   // "52:54:00:6b:NN:II": NN the node's index + 1, II the
                     // NIC's, in hex; unique within the topology
  Address address;   // the uplink's: 10.0.2.15/24
};

struct Route {
  Address destination;   // a subnet (ip = its network address)
  uint32_t gateway = 0;  // host byte order; 0.0.0.0/0 with a gateway: the default route
};

struct NodeNetwork {
  std::vector<Nic> nics;
  std::vector<Route> routes;
  // /etc/hosts lines: "ADDRESS NAME" for every node, in the order of
  // spec.nodes: the address of a node on a link shared with this one, else
  // its first link address that this node has a route to, else its first
  // link address; a node without links is left out (its uplink address,
  // 10.0.2.15, is every node's own). The node itself: its first address (the
  // uplink's if it has no link), or 127.0.1.1 without any NIC.
  std::vector<std::pair<std::string, std::string>> hosts;  // {ip, name}
  bool forward = false;
  std::vector<std::string> nameservers;  // "10.0.2.3" with an uplink
};

// Assigns the addresses not given and plans each node's NICs, routes (to
// every subnet reachable through forwarding nodes, by the fewest hops; a
// default route via 10.0.2.2 on a node with an uplink) and names. The result
// is in the order of spec.nodes. Expects check_spec(spec) to have passed.
//
// A node X has a route to the subnet of a link it is not on when a path
// X - n1 - ... - nk reaches an end nk of that link and every n1..nk forwards
// (each receives the packet on one link and sends it on another); the
// gateway is n1's address on the link X - n1. The fewest hops win, ties go to
// the lower link indexes along the path. Routes are in the order of the
// links, the default route last.
std::vector<NodeNetwork> plan_network(const Spec& spec);

}  // namespace kestrel::topology
