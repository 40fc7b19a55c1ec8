// plan_network: each node's NICs, routes and /etc/hosts lines, from a
// checked spec (topology/spec.hpp says what they are).
#include <fmt/format.h>

#include <algorithm>
#include <deque>
#include <map>
#include <optional>

#include "topology/spec.hpp"

namespace kestrel::topology {
namespace {

constexpr const char* kNoAddress = "127.0.1.1";  // Debian's address of the host's own name

// What a breadth-first search from one node found: for each node, the hops
// to it (-1: not reached), the link its path starts with and when it was
// reached (paths found earlier have lower link indexes).
struct Reach {
  std::vector<int> hops, first_link, order;
};

}  // namespace

std::vector<NodeNetwork> plan_network(const Spec& spec) {
  size_t count = spec.nodes.size();
  std::map<std::string, size_t, std::less<>> index;
  for (size_t i = 0; i < count; ++i) index.emplace(spec.nodes[i].name, i);
  std::vector<std::pair<Address, Address>> addresses = link_addresses(spec);
  // The ends of each link, and the links of each node in the order of spec.links.
  std::vector<std::pair<size_t, size_t>> ends;
  std::vector<std::vector<size_t>> links_of(count);
  for (size_t l = 0; l < spec.links.size(); ++l) {
    ends.emplace_back(index.at(spec.links[l].a), index.at(spec.links[l].b));
    links_of[ends[l].first].push_back(l);
    links_of[ends[l].second].push_back(l);
  }
  auto other_end = [&](size_t link, size_t node) {
    return ends[link].first == node ? ends[link].second : ends[link].first;
  };
  auto address_on = [&](size_t link, size_t node) {
    return ends[link].first == node ? addresses[link].first : addresses[link].second;
  };

  std::vector<NodeNetwork> plan(count);
  for (size_t x = 0; x < count; ++x) {
    const NodeSpec& node = spec.nodes[x];
    NodeNetwork& net = plan[x];
    net.forward = node.forward;
    auto mac = [&] { return fmt::format("52:54:00:6b:{:02x}:{:02x}", x + 1, net.nics.size()); };
    for (size_t l : links_of[x]) {
      net.nics.push_back({static_cast<int>(l), spec.nodes[other_end(l, x)].name, mac(), address_on(l, x)});
    }
    if (node.uplink) net.nics.push_back({-1, "", mac(), kUplinkAddress});

    // Only nodes that forward pass a packet on: the search goes on from x
    // and from them alone.
    Reach reach{std::vector<int>(count, -1), std::vector<int>(count, -1), std::vector<int>(count, -1)};
    reach.hops[x] = 0;
    int reached = 0;
    std::deque<size_t> queue{x};
    while (!queue.empty()) {
      size_t u = queue.front();
      queue.pop_front();
      if (u != x && !spec.nodes[u].forward) continue;
      for (size_t l : links_of[u]) {
        size_t v = other_end(l, u);
        if (reach.hops[v] != -1) continue;
        reach.hops[v] = reach.hops[u] + 1;
        reach.first_link[v] = u == x ? static_cast<int>(l) : reach.first_link[u];
        reach.order[v] = reached++;
        queue.push_back(v);
      }
    }
    // A link's subnet is reached through an end that forwards (it receives
    // the packet on one link and sends it on this one).
    for (size_t s = 0; s < spec.links.size(); ++s) {
      auto [a, b] = ends[s];
      if (a == x || b == x) continue;
      std::optional<size_t> via;
      for (size_t end : {a, b}) {
        if (reach.hops[end] < 1 || !spec.nodes[end].forward) continue;
        if (!via || std::pair(reach.hops[end], reach.order[end]) < std::pair(reach.hops[*via], reach.order[*via]))
          via = end;
      }
      if (!via) continue;
      auto first = static_cast<size_t>(reach.first_link[*via]);
      Address subnet{addresses[s].first.network(), addresses[s].first.prefix};
      net.routes.push_back({subnet, address_on(first, other_end(first, x)).ip});
    }
    if (node.uplink) {
      net.routes.push_back({Address{0, 0}, kUplinkGateway});
      net.nameservers = {kUplinkDns};
    }
  }

  // Names: after the routes, which they look at.
  for (size_t x = 0; x < count; ++x) {
    NodeNetwork& net = plan[x];
    auto routed = [&](const Address& a) {
      return std::ranges::any_of(net.routes, [&](const Route& r) {
        return r.destination.prefix > 0 && r.destination.prefix == a.prefix && r.destination.ip == a.network();
      });
    };
    for (size_t y = 0; y < count; ++y) {
      const std::string& name = spec.nodes[y].name;
      if (y == x) {
        net.hosts.emplace_back(net.nics.empty() ? kNoAddress : net.nics.front().address.ip_str(), name);
        continue;
      }
      const std::vector<size_t>& links = links_of[y];
      if (links.empty()) continue;  // only its uplink, whose address is every node's own
      auto shared = std::ranges::find_if(links, [&](size_t l) { return other_end(l, y) == x; });
      auto routed_link = std::ranges::find_if(links, [&](size_t l) { return routed(address_on(l, y)); });
      size_t l = shared != links.end() ? *shared : routed_link != links.end() ? *routed_link : links.front();
      net.hosts.emplace_back(address_on(l, y).ip_str(), name);
    }
  }
  return plan;
}

}  // namespace kestrel::topology
