// Structured messages (docs/protocol.md, "Messages"): one struct per payload
// layout with encode() and a static decode() that throws on malformed input.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace kestrel::proto {

struct Hello {
  uint32_t version = 0;
  uint32_t nonce = 0;
  std::vector<std::string> capabilities;
  std::string info;  // key=value lines

  std::string encode() const;
  static Hello decode(std::string_view payload);
};

// docs/protocol.md, "Messages": kRootOverlay and kDiskRoot are the root
// mounts. A disk root's tag is the block device ("/dev/vda"), its target the
// file system type ("ext4").
enum class MountKind : uint32_t { kRootOverlay = 0, kReadWrite = 1, kReadOnly = 2, kDiskRoot = 3 };

struct Mount {
  std::string tag;
  std::string target;
  MountKind kind = MountKind::kReadOnly;

  bool is_root() const { return kind == MountKind::kRootOverlay || kind == MountKind::kDiskRoot; }
};

// A resource limit (setrlimit(2)) of SETUP: RLIMIT_* numbers as Linux has
// them on every architecture kestrel runs (RLIMIT_NOFILE is 7), values as
// rlim_t (RLIM_INFINITY is all ones).
struct Limit {
  uint32_t resource = 0;
  uint64_t soft = 0;
  uint64_t hard = 0;
  bool operator==(const Limit&) const = default;
};
constexpr size_t kMaxLimits = 16;
constexpr uint32_t kLimitResources = 16;      // RLIM_NLIMITS: resources are below it
constexpr size_t kMaxSetupHosts = 64 * 1024;  // as NETWORK's hosts
constexpr size_t kMaxLocaltime = 64 * 1024;   // TZif files are a few KiB
constexpr size_t kMaxTimezoneName = 255;

struct SetupRequest {
  std::string hostname;
  int64_t realtime_ns = 0;
  std::string entropy;
  std::vector<Mount> mounts;
  // Set in the agent, so that every program and service it starts from now
  // on has them: the host's own (docs/guest.md, "What a guest has").
  std::vector<Limit> limits;
  // The guest root's /etc/hosts as the host read it, for a root overlay of
  // the host's own root: the agent names the VM in it instead of reading it
  // through 9p (milliseconds under TCG). "": the agent reads the root's own.
  std::string hosts;
  // The host's time zone for a root that is not the host's (an image): its
  // /etc/localtime (a TZif file) and its name (/etc/timezone, e.g.
  // "Europe/Berlin"). "": the root's own.
  std::string localtime;
  std::string timezone;

  std::string encode() const;
  static SetupRequest decode(std::string_view payload);
};

// Bounds of a SERVICE (docs/protocol.md, "Services").
constexpr size_t kMaxServiceName = 64;
constexpr size_t kMaxServiceText = 64 * 1024;  // command, ready

// When a service counts as ready: its `ready` field parsed.
struct Readiness {
  enum class Kind { kExited, kTcp, kUnix, kCommand };
  Kind kind = Kind::kExited;
  uint16_t port = 0;  // kTcp
  std::string text;   // kUnix: the socket's path; kCommand: the shell command
};

// "", "tcp:PORT", "unix:/PATH" or "command:SHELL". Throws Error saying what
// is wrong, e.g. "invalid readiness 'tcp:x': PORT must be 1 to 65535".
Readiness parse_readiness(std::string_view ready);

struct ServiceRequest {
  std::string name;     // [a-z0-9][a-z0-9._-]{0,62}: names its log file
  std::string command;  // run as /bin/sh -c COMMAND
  std::string ready;    // parse_readiness()
  uint32_t timeout_ms = 0;

  std::string encode() const;
  // Checks the framing and the size bounds only; validate() the rest.
  static ServiceRequest decode(std::string_view payload);
  // Throws Error naming what is wrong with a field (both sides call it: the
  // host before it sends, the agent before it starts anything).
  void validate() const;
};

// Bounds of a NETWORK (docs/protocol.md, "Network").
constexpr size_t kMaxNics = 16;
constexpr size_t kMaxRoutes = 256;
constexpr size_t kMaxMacText = 17;             // "52:54:00:0a:01:02"
constexpr size_t kMaxNetworkText = 64 * 1024;  // hosts, resolv_conf

// A MAC address as six bytes.
using MacAddress = std::array<uint8_t, 6>;

// "52:54:00:0a:01:02" (either case) as six bytes. Throws Error saying what is
// wrong; the address may still be unusable (multicast, all zero).
MacAddress parse_mac(std::string_view text);
// An IPv4 address in host byte order (10.1.2.3 is 0x0a010203) as "10.1.2.3".
std::string format_ipv4(uint32_t address);
// The netmask of a prefix length 0..32, host byte order: 24 is 0xffffff00.
uint32_t prefix_netmask(int prefix);

// NETWORK: the network of one node of a topology (docs/protocol.md,
// "Network"). Addresses are in host byte order (10.1.2.3 is 0x0a010203).
struct NetworkRequest {
  struct Nic {
    std::string mac;       // set on the interface: "52:54:00:0a:01:02"
    uint32_t address = 0;  // IPv4
    int prefix = 24;       // 8..30
  };
  struct Route {
    uint32_t destination = 0;  // a subnet: no bit set past the prefix
    int prefix = 0;            // 0..32; 0.0.0.0/0 is the default route
    uint32_t gateway = 0;      // in the subnet of one of `nics`
  };

  // NIC k configures the guest's k-th virtio-net interface in the order of
  // the PCI addresses of their devices.
  std::vector<Nic> nics;
  std::vector<Route> routes;
  bool forward = false;     // /proc/sys/net/ipv4/ip_forward
  std::string hosts;        // the guest root's /etc/hosts; "" leaves it alone
  std::string resolv_conf;  // likewise /etc/resolv.conf

  std::string encode() const;
  // Checks the framing and the size bounds only; validate() the rest.
  static NetworkRequest decode(std::string_view payload);
  // Throws Error "invalid NETWORK: ..." naming the NIC or route that breaks
  // a rule (both sides call it: the host before it sends, the agent before
  // it changes anything).
  void validate() const;
};

constexpr uint32_t kExecStdin = 1u << 0;
constexpr uint32_t kExecPty = 1u << 1;
// argv and env continue in EXEC_MORE frames (docs/protocol.md, "Large EXEC").
constexpr uint32_t kExecMoreFollows = 1u << 2;

struct Exec {
  std::vector<std::string> argv;
  std::vector<std::string> env;
  std::string cwd;
  uint32_t flags = 0;
  uint32_t rows = 0;
  uint32_t cols = 0;

  std::string encode() const;
  static Exec decode(std::string_view payload);
};

// The next items of an EXEC sent with kExecMoreFollows.
struct ExecMore {
  bool last = false;
  std::vector<std::string> argv;
  std::vector<std::string> env;

  std::string encode() const;
  // Also rejects a frame without items: each one must make progress.
  static ExecMore decode(std::string_view payload);
};

// The longest `oom` of an EXIT.
constexpr size_t kMaxOomText = 1024;

struct ExitStatus {
  enum class Kind : uint8_t { kExited = 0, kSignaled = 1 };
  Kind kind = Kind::kExited;
  int32_t code = 0;
  // The processes the guest's OOM killer ended while the program ran ("" for
  // none), e.g. "process 312 (test-alloc, 402 MiB resident)"; the program's
  // own or any other (a service it needed).
  std::string oom;

  // As a shell reports it: the code, or 128+N for death by signal N.
  int shell_status() const { return kind == Kind::kExited ? code : 128 + code; }

  std::string encode() const;
  static ExitStatus decode(std::string_view payload);
};

struct WindowSize {
  uint32_t rows = 0;
  uint32_t cols = 0;
  std::string encode() const;
  static WindowSize decode(std::string_view payload);
};

// Single-field payloads.
std::string encode_i32(int32_t v);
int32_t decode_i32(std::string_view payload);
std::string encode_text(std::string_view message);
std::string decode_text(std::string_view payload);

}  // namespace kestrel::proto
