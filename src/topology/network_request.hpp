// The NETWORK request (docs/protocol.md, "Network") that configures one
// node of a planned topology in its guest.
#pragma once

#include <string>

#include "proto/messages.hpp"
#include "topology/spec.hpp"

namespace kestrel::topology {

// The node's /etc/hosts: localhost, then every node of the topology.
std::string hosts_file(const NodeNetwork& network);

proto::NetworkRequest network_request(const NodeNetwork& network, const NodeSpec& node);

}  // namespace kestrel::topology
