#include "topology/network_request.hpp"

namespace kestrel::topology {

std::string hosts_file(const NodeNetwork& network) {
  std::string text = "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n";
  for (const auto& [ip, name] : network.hosts) text += ip + "\t" + name + "\n";
  return text;
}

proto::NetworkRequest network_request(const NodeNetwork& network, const NodeSpec& node) {
  proto::NetworkRequest r;
  for (const auto& nic : network.nics) r.nics.push_back({nic.mac, nic.address.ip, nic.address.prefix});
  for (const auto& route : network.routes)
    r.routes.push_back({route.destination.network(), route.destination.prefix, route.gateway});
  r.forward = node.forward;
  r.hosts = hosts_file(network);
  if (!network.nameservers.empty()) {
    for (const auto& ns : network.nameservers) r.resolv_conf += "nameserver " + ns + "\n";
  }
  return r;
}

}  // namespace kestrel::topology
