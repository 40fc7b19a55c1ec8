#include "proto/messages.hpp"

#include <algorithm>

#include "proto/wire.hpp"
#include "util/error.hpp"

namespace kestrel::proto {

std::string Hello::encode() const { return Writer().u32(version).u32(nonce).list(capabilities).bytes(info).take(); }

Hello Hello::decode(std::string_view payload) {
  Reader r(payload);
  Hello h;
  h.version = r.u32();
  h.nonce = r.u32();
  h.capabilities = r.list();
  h.info = r.bytes();
  r.finish();
  return h;
}

std::string SetupRequest::encode() const {
  Writer w;
  w.bytes(hostname).i64(realtime_ns).bytes(entropy).u32(static_cast<uint32_t>(mounts.size()));
  for (const auto& m : mounts) w.bytes(m.tag).bytes(m.target).u32(static_cast<uint32_t>(m.kind));
  w.u32(static_cast<uint32_t>(limits.size()));
  for (const auto& l : limits) w.u32(l.resource).u64(l.soft).u64(l.hard);
  w.bytes(hosts).bytes(localtime).bytes(timezone);
  return w.take();
}

SetupRequest SetupRequest::decode(std::string_view payload) {
  Reader r(payload);
  SetupRequest s;
  s.hostname = r.bytes();
  s.realtime_ns = r.i64();
  s.entropy = r.bytes();
  uint32_t n = r.count();
  for (uint32_t i = 0; i < n; ++i) {
    Mount m;
    m.tag = r.bytes();
    m.target = r.bytes();
    uint32_t kind = r.u32();
    if (kind > 3) fail("malformed SETUP: unknown mount kind {}", kind);
    m.kind = static_cast<MountKind>(kind);
    s.mounts.push_back(std::move(m));
  }
  uint32_t limits = r.count();
  if (limits > kMaxLimits) fail("malformed SETUP: {} resource limits (at most {})", limits, kMaxLimits);
  for (uint32_t i = 0; i < limits; ++i) {
    Limit l;
    l.resource = r.u32();
    l.soft = r.u64();
    l.hard = r.u64();
    if (l.resource >= kLimitResources) fail("malformed SETUP: unknown resource limit {}", l.resource);
    s.limits.push_back(l);
  }
  s.hosts = r.bytes();
  if (s.hosts.size() > kMaxSetupHosts)
    fail("malformed SETUP: hosts of {} bytes (at most {})", s.hosts.size(), kMaxSetupHosts);
  s.localtime = r.bytes();
  if (s.localtime.size() > kMaxLocaltime)
    fail("malformed SETUP: localtime of {} bytes (at most {})", s.localtime.size(), kMaxLocaltime);
  s.timezone = r.bytes();
  if (s.timezone.size() > kMaxTimezoneName ||
      s.timezone.find_first_of(std::string_view("\n\0", 2)) != std::string::npos)
    fail("malformed SETUP: a time zone name over {} bytes or with a newline or NUL", kMaxTimezoneName);
  r.finish();
  return s;
}

namespace {

constexpr size_t kMaxUnixPath = 107;  // sun_path, less its NUL

bool name_char(char c, bool first) {
  if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')) return true;
  return !first && (c == '.' || c == '_' || c == '-');
}

}  // namespace

Readiness parse_readiness(std::string_view ready) {
  Readiness r;
  if (ready.empty()) return r;
  auto invalid = [&](std::string_view why) -> Error {
    return Error(fmt::format("invalid readiness '{}': {}", ready.substr(0, 200), why));
  };
  if (ready.find('\0') != std::string_view::npos) throw invalid("it contains a NUL byte");
  if (ready.starts_with("tcp:")) {
    std::string_view port = ready.substr(4);
    uint32_t n = 0;
    bool digits = !port.empty() && port.size() <= 5;
    for (char c : port) {
      if (c < '0' || c > '9') digits = false;
      n = n * 10 + static_cast<uint32_t>(c - '0');
    }
    if (!digits || n < 1 || n > 65535) throw invalid("PORT must be a number from 1 to 65535");
    r.kind = Readiness::Kind::kTcp;
    r.port = static_cast<uint16_t>(n);
  } else if (ready.starts_with("unix:")) {
    std::string_view path = ready.substr(5);
    if (!path.starts_with("/")) throw invalid("the socket's path must be absolute");
    if (path.size() > kMaxUnixPath)
      throw invalid(fmt::format("the socket's path is longer than {} bytes", kMaxUnixPath));
    r.kind = Readiness::Kind::kUnix;
    r.text = std::string(path);
  } else if (ready.starts_with("command:")) {
    if (ready.size() == 8) throw invalid("the command is empty");
    r.kind = Readiness::Kind::kCommand;
    r.text = std::string(ready.substr(8));
  } else {
    throw invalid("expected nothing, tcp:PORT, unix:/PATH or command:SHELL");
  }
  return r;
}

std::string ServiceRequest::encode() const {
  return Writer().bytes(name).bytes(command).bytes(ready).u32(timeout_ms).take();
}

ServiceRequest ServiceRequest::decode(std::string_view payload) {
  Reader r(payload);
  ServiceRequest s;
  s.name = r.bytes();
  s.command = r.bytes();
  s.ready = r.bytes();
  s.timeout_ms = r.u32();
  r.finish();
  if (s.name.size() > kMaxServiceName)
    fail("malformed SERVICE: name of {} bytes (at most {})", s.name.size(), kMaxServiceName);
  if (s.command.size() > kMaxServiceText)
    fail("malformed SERVICE: command of {} bytes (at most {})", s.command.size(), kMaxServiceText);
  if (s.ready.size() > kMaxServiceText)
    fail("malformed SERVICE: ready of {} bytes (at most {})", s.ready.size(), kMaxServiceText);
  return s;
}

void ServiceRequest::validate() const {
  bool good = !name.empty() && name.size() < kMaxServiceName;
  for (size_t i = 0; good && i < name.size(); ++i) good = name_char(name[i], i == 0);
  if (!good) fail("invalid service name '{}': expected [a-z0-9][a-z0-9._-]{{0,62}}", name.substr(0, 200));
  if (command.empty()) fail("service {} has no command", name);
  if (command.size() > kMaxServiceText)
    fail("the command of service {} is longer than {} bytes", name, kMaxServiceText);
  if (command.find('\0') != std::string::npos) fail("the command of service {} contains a NUL byte", name);
  if (ready.size() > kMaxServiceText)
    fail("the readiness of service {} is longer than {} bytes", name, kMaxServiceText);
  try {
    parse_readiness(ready);
  } catch (const Error& e) {
    fail("service {}: {}", name, e.what());
  }
  if (timeout_ms == 0) fail("service {} has a timeout of 0 ms", name);
}

namespace {

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// A prefix as it goes on the wire (u8): one out of range stays out of range,
// for the agent to refuse.
uint8_t wire_prefix(int prefix) { return static_cast<uint8_t>(std::clamp(prefix, 0, 255)); }

std::string format_mac(const MacAddress& mac) {
  return fmt::format("{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}", mac[0], mac[1], mac[2], mac[3], mac[4], mac[5]);
}

bool in_subnet(uint32_t address, uint32_t network_address, int prefix) {
  uint32_t mask = prefix_netmask(prefix);
  return (address & mask) == (network_address & mask);
}

}  // namespace

MacAddress parse_mac(std::string_view text) {
  MacAddress mac{};
  bool good = text.size() == 17;
  for (size_t i = 0; good && i < 6; ++i) {
    int hi = hex_value(text[3 * i]), lo = hex_value(text[3 * i + 1]);
    good = hi >= 0 && lo >= 0 && (i == 5 || text[3 * i + 2] == ':');
    mac[i] = static_cast<uint8_t>(hi * 16 + lo);
  }
  if (!good)
    fail("invalid MAC address '{}': expected six hex bytes separated by ':', e.g. 52:54:00:0a:01:02",
         text.substr(0, 40));
  return mac;
}

std::string format_ipv4(uint32_t a) {
  return fmt::format("{}.{}.{}.{}", a >> 24, (a >> 16) & 0xff, (a >> 8) & 0xff, a & 0xff);
}

uint32_t prefix_netmask(int prefix) {
  if (prefix <= 0) return 0;
  if (prefix >= 32) return 0xffffffffu;
  return ~((1u << (32 - prefix)) - 1);
}

std::string NetworkRequest::encode() const {
  Writer w;
  w.u32(static_cast<uint32_t>(nics.size()));
  for (const Nic& n : nics) w.bytes(n.mac).u32(n.address).u8(wire_prefix(n.prefix));
  w.u32(static_cast<uint32_t>(routes.size()));
  for (const Route& r : routes) w.u32(r.destination).u8(wire_prefix(r.prefix)).u32(r.gateway);
  w.u8(forward ? 1 : 0).bytes(hosts).bytes(resolv_conf);
  return w.take();
}

NetworkRequest NetworkRequest::decode(std::string_view payload) {
  Reader r(payload);
  NetworkRequest n;
  uint32_t count = r.count();
  if (count > kMaxNics) fail("malformed NETWORK: {} NICs (at most {})", count, kMaxNics);
  for (uint32_t i = 0; i < count; ++i) {
    Nic nic;
    nic.mac = r.bytes();
    if (nic.mac.size() > kMaxMacText)
      fail("malformed NETWORK: MAC address of {} bytes (at most {})", nic.mac.size(), kMaxMacText);
    nic.address = r.u32();
    nic.prefix = r.u8();
    n.nics.push_back(std::move(nic));
  }
  count = r.count();
  if (count > kMaxRoutes) fail("malformed NETWORK: {} routes (at most {})", count, kMaxRoutes);
  for (uint32_t i = 0; i < count; ++i) {
    Route route;
    route.destination = r.u32();
    route.prefix = r.u8();
    route.gateway = r.u32();
    n.routes.push_back(route);
  }
  uint8_t forward = r.u8();
  if (forward > 1) fail("malformed NETWORK: forward is {}", forward);
  n.forward = forward == 1;
  n.hosts = r.bytes();
  n.resolv_conf = r.bytes();
  r.finish();
  if (n.hosts.size() > kMaxNetworkText)
    fail("malformed NETWORK: hosts of {} bytes (at most {})", n.hosts.size(), kMaxNetworkText);
  if (n.resolv_conf.size() > kMaxNetworkText)
    fail("malformed NETWORK: resolv_conf of {} bytes (at most {})", n.resolv_conf.size(), kMaxNetworkText);
  return n;
}

void NetworkRequest::validate() const {
  auto invalid = [](const std::string& why) { return Error("invalid NETWORK: " + why); };
  if (nics.size() > kMaxNics) throw invalid(fmt::format("{} NICs (at most {})", nics.size(), kMaxNics));
  if (routes.size() > kMaxRoutes) throw invalid(fmt::format("{} routes (at most {})", routes.size(), kMaxRoutes));
  std::vector<MacAddress> macs;
  for (size_t i = 0; i < nics.size(); ++i) {
    const Nic& n = nics[i];
    MacAddress mac;
    try {
      mac = parse_mac(n.mac);
    } catch (const Error& e) {
      throw invalid(fmt::format("NIC {}: {}", i, e.what()));
    }
    if (mac[0] & 1)
      throw invalid(fmt::format(
          "NIC {}: MAC address {} is a multicast address (the lowest bit of its first byte is set)", i, n.mac));
    if (mac == MacAddress{}) throw invalid(fmt::format("NIC {}: MAC address {} is all zero", i, n.mac));
    if (n.prefix < 8 || n.prefix > 30)
      throw invalid(fmt::format("NIC {}: prefix length {} is out of range (8 to 30)", i, n.prefix));
    uint32_t host = n.address & ~prefix_netmask(n.prefix);
    std::string address = fmt::format("{}/{}", format_ipv4(n.address), n.prefix);
    if (host == 0) throw invalid(fmt::format("NIC {}: {} is the network address of its subnet", i, address));
    if (host == ~prefix_netmask(n.prefix))
      throw invalid(fmt::format("NIC {}: {} is the broadcast address of its subnet", i, address));
    for (size_t j = 0; j < i; ++j) {
      if (macs[j] == mac)
        throw invalid(fmt::format("NIC {} has the MAC address of NIC {} ({})", i, j, format_mac(mac)));
      if (nics[j].address == n.address)
        throw invalid(fmt::format("NIC {} has the address of NIC {} ({})", i, j, format_ipv4(n.address)));
    }
    macs.push_back(mac);
  }
  for (size_t i = 0; i < routes.size(); ++i) {
    const Route& r = routes[i];
    if (r.prefix < 0 || r.prefix > 32)
      throw invalid(fmt::format("route {}: prefix length {} is out of range (0 to 32)", i, r.prefix));
    std::string subnet = fmt::format("{}/{}", format_ipv4(r.destination), r.prefix);
    uint32_t network = r.destination & prefix_netmask(r.prefix);
    if (network != r.destination)
      throw invalid(fmt::format("route {}: {} has address bits set past its prefix (the subnet is {}/{})", i, subnet,
                                format_ipv4(network), r.prefix));
    bool on_link =
        std::any_of(nics.begin(), nics.end(), [&](const Nic& n) { return in_subnet(r.gateway, n.address, n.prefix); });
    if (!on_link)
      throw invalid(fmt::format("route {}: the gateway {} of {} is in the subnet of none of the NICs", i,
                                format_ipv4(r.gateway), subnet));
  }
  auto check_text = [&](const char* name, const std::string& text) {
    if (text.size() > kMaxNetworkText) throw invalid(fmt::format("{} is longer than {} bytes", name, kMaxNetworkText));
    if (text.find('\0') != std::string::npos) throw invalid(fmt::format("{} contains a NUL byte", name));
  };
  check_text("hosts", hosts);
  check_text("resolv_conf", resolv_conf);
}

std::string Exec::encode() const {
  return Writer().list(argv).list(env).bytes(cwd).u32(flags).u32(rows).u32(cols).take();
}

Exec Exec::decode(std::string_view payload) {
  Reader r(payload);
  Exec e;
  e.argv = r.list();
  e.env = r.list();
  e.cwd = r.bytes();
  e.flags = r.u32();
  e.rows = r.u32();
  e.cols = r.u32();
  r.finish();
  if (e.argv.empty()) fail("malformed EXEC: empty argv");
  return e;
}

std::string ExecMore::encode() const { return Writer().u8(last ? 1 : 0).list(argv).list(env).take(); }

ExecMore ExecMore::decode(std::string_view payload) {
  Reader r(payload);
  ExecMore m;
  uint8_t last = r.u8();
  if (last > 1) fail("malformed EXEC_MORE: last is {}", last);
  m.last = last == 1;
  m.argv = r.list();
  m.env = r.list();
  r.finish();
  if (m.argv.empty() && m.env.empty()) fail("malformed EXEC_MORE: no items");
  return m;
}

std::string ExitStatus::encode() const {
  return Writer().u8(static_cast<uint8_t>(kind)).i32(code).bytes(oom.substr(0, kMaxOomText)).take();
}

ExitStatus ExitStatus::decode(std::string_view payload) {
  Reader r(payload);
  ExitStatus s;
  uint8_t kind = r.u8();
  if (kind > 1) fail("malformed EXIT: unknown kind {}", kind);
  s.kind = static_cast<Kind>(kind);
  s.code = r.i32();
  s.oom = r.bytes();
  if (s.oom.size() > kMaxOomText) fail("malformed EXIT: oom text of {} bytes (at most {})", s.oom.size(), kMaxOomText);
  r.finish();
  return s;
}

std::string WindowSize::encode() const { return Writer().u32(rows).u32(cols).take(); }

WindowSize WindowSize::decode(std::string_view payload) {
  Reader r(payload);
  WindowSize w;
  w.rows = r.u32();
  w.cols = r.u32();
  r.finish();
  return w;
}

std::string encode_i32(int32_t v) { return Writer().i32(v).take(); }

int32_t decode_i32(std::string_view payload) {
  Reader r(payload);
  int32_t v = r.i32();
  r.finish();
  return v;
}

std::string encode_text(std::string_view message) { return Writer().bytes(message).take(); }

std::string decode_text(std::string_view payload) {
  Reader r(payload);
  std::string s = r.bytes();
  r.finish();
  return s;
}

}  // namespace kestrel::proto
