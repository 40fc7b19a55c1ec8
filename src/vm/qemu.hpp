// The QEMU backend: the command line for one VM and its launch.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "util/capped_log.hpp"
#include "util/process.hpp"
#include "vm/accel.hpp"
#include "vm/paths.hpp"

namespace kestrel::vm {

struct Share {
  std::string tag;             // 9p mount tag seen by the guest
  std::filesystem::path path;  // host directory
  bool read_only = false;
};

// A virtio-net NIC (topologies, docs/topologies.md). QEMU puts the NICs on
// the PCI bus after the other devices, in this order; the guest agent takes
// them in the order of their PCI addresses (NETWORK, docs/protocol.md).
struct Nic {
  enum class Kind { kDgram, kUser };
  Kind kind = Kind::kDgram;
  // kDgram: a point-to-point link over two unix datagram sockets, this end's
  // and the peer's (either may start first; the backend is not part of the
  // device state a clone loads, so clones take their own paths).
  std::filesystem::path local, remote;
  std::string mac;  // "" for QEMU's default; the agent sets the planned one anyway
};

// QEMU's user-mode network (-netdev user, "slirp") as it sets itself up: the
// guest's address, the gateway (where the host's own services answer: a
// connection to 10.0.2.2 reaches the host's 127.0.0.1), the DNS server.
inline constexpr uint32_t kUserNetwork = 0x0a000200;  // 10.0.2.0/24
inline constexpr int kUserNetworkPrefix = 24;
inline constexpr uint32_t kUserAddress = 0x0a00020f;  // 10.0.2.15
inline constexpr uint32_t kUserGateway = 0x0a000202;  // 10.0.2.2
inline constexpr const char* kUserDns = "10.0.2.3";
inline constexpr const char* kUserMac = "52:54:00:12:34:56";  // QEMU's default for a first NIC

struct VmConfig {
  std::string name;
  VmPaths paths;
  std::filesystem::path kernel;  // vmlinux (PVH) or bzImage
  std::filesystem::path initramfs;
  uint32_t mem_mib = 1024;
  uint32_t cpus = 1;
  Accel accel = Accel::kTcg;
  std::vector<Share> shares;
  // A virtio-blk disk (qcow2), the guest root of an image run
  // (docs/images.md); empty: none. Each VM writes to its own overlay file.
  std::filesystem::path disk;
  std::vector<Nic> nics;  // device ids nic0, nic1, ... (QMP set_link names them)
  bool debug = false;     // kestrel.debug=1, kernel messages not quieted
  // pci=noacpi, unless the kernel would lose its local APIC to it
  // (assets::keeps_pci_noacpi: a kernel without CONFIG_X86_MPPARSE).
  bool pci_noacpi = true;
  // The user's kernel arguments (`kernel_args`, --append), after kestrel's own.
  std::string kernel_args;
  // Guest RAM in a file instead of anonymous memory (warm starts,
  // docs/warm-starts.md): shared for a template being built (the guest's
  // memory ends up in the file), private copy-on-write for a clone.
  std::filesystem::path memory_file;
  bool memory_shared = false;
  bool incoming = false;  // -incoming defer: wait for a migration stream (a clone)
  // What writes console.log from a pipe QEMU writes the console into,
  // capped at console_log_max (`kestrel-agent console-log`,
  // util/capped_log.hpp); empty: QEMU writes the file itself, uncapped.
  std::filesystem::path console_logger;
  uint64_t console_log_max = kDefaultConsoleLogMax;
};

// The descriptor QEMU gets the console pipe on (console_logger).
constexpr int kConsolePipeFd = 4;

// The kernel command line kestrel boots with: its own flags (docs/guest.md,
// "Kernel command line"), then the user's kernel_args, so that a parameter
// given there again wins.
std::string kernel_cmdline(const VmConfig& config);

// Linux on x86 takes a command line of at most 2047 bytes (COMMAND_LINE_SIZE
// 2048, with its NUL) and cuts off the rest; QEMU refuses a longer one for a
// bzImage.
inline constexpr size_t kMaxKernelCmdline = 2047;
// Throws, saying how long kestrel's part and the user's are, when the command
// line (as the VM or its warm-start template boots) is longer.
void check_kernel_cmdline(const VmConfig& config);

// A value inside a QEMU option list (`-chardev socket,path=VALUE,...`): QEMU
// reads ",," as a literal comma, so a path with commas cannot add options.
std::string opt_value(std::string_view value);

// The QMP/QEMU id of NIC `index`: "nic0", ...
std::string nic_id(size_t index);

// The full argv, argv[0] = the QEMU binary.
std::vector<std::string> qemu_argv(const VmConfig& config, const std::string& qemu_binary);

// TCG runs each vCPU on a host thread, and the guest kernel's SMP start-up
// waits on all of them: with many more vCPUs than host CPUs the boot does not
// end within the boot timeout (on a 2-CPU host: 8 vCPUs 11 s, 9 vCPUs 24 s,
// 16 no greeting in 60 s). This many vCPUs per host CPU boot in time.
inline constexpr uint32_t kTcgCpusPerHostCpu = 4;
uint32_t max_tcg_cpus(long host_cpus);
// Throws, saying why, when `config` asks for more vCPUs than its accelerator
// can boot on a host with `host_cpus` CPUs (launch_qemu checks this host's).
void check_cpus(const VmConfig& config, long host_cpus);
// The same for the CPUs this process may run on.
void check_cpus(const VmConfig& config);

// $KESTREL_QEMU, else qemu-system-x86_64 from PATH. Throws naming the
// package to install when it is missing.
std::string find_qemu();

// "QEMU emulator version 7.2.22 ..." → "7.2.22"; cached per binary path.
std::string qemu_version(const std::string& qemu_binary);
// The accelerators this QEMU was built with (`-accel help`: "tcg", "kvm"),
// remembered per binary like its version.
std::vector<std::string> qemu_accelerators(const std::string& qemu_binary);

// Spawns QEMU in its own session with stdout/stderr to qemu.log and writes
// qemu.pid. The returned Child kills QEMU if dropped; release() it to keep
// the VM running after kestrel exits.
struct LaunchExtras {
  std::vector<std::pair<int, int>> fds;  // passed on as in SpawnOptions (e.g. a migration stream)
  bool die_with_parent = false;          // see SpawnOptions
};
Child launch_qemu(const VmConfig& config, const std::string& qemu_binary, const LaunchExtras& extras = {});

// Waits (until `deadline`) for the console logger to have written all QEMU
// gave it: for reading console.log after the VM ended.
void settle_console_log(const VmPaths& paths, Deadline deadline);

// Last `max_lines` lines of a log file, for error messages ("" if absent).
std::string tail_lines(const std::filesystem::path& file, size_t max_lines);

}  // namespace kestrel::vm
