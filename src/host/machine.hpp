// A running VM with its agent connection: what `kestrel run` (and later
// topologies) boot. Resolves the kernel, builds/caches the initramfs,
// chooses the accelerator, then restores a clone of the configuration's
// template (warm start) or launches QEMU from scratch and waits for the
// agent, with a deadline and a fallback from KVM to TCG when KVM was chosen
// automatically.
#pragma once

#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "assets/kernel.hpp"
#include "host/agent_client.hpp"
#include "util/process.hpp"
#include "vm/qemu.hpp"

namespace kestrel::host {

// The guest root of an image run (docs/images.md): a qcow2 disk the agent
// mounts as the root, and the services it starts there before a template is
// saved (or, booting cold, before the run's SETUP).
struct DiskImage {
  std::filesystem::path base;  // the image's disk, never written (each VM gets an overlay)
  std::string id;              // the image's id: part of the template key
  std::string name;
  std::vector<proto::ServiceRequest> services;
  // Boot `base` itself, writable (provisioning an image being built): no
  // overlay, no services, no template.
  bool in_place = false;
};

struct BootOptions {
  std::string name;
  vm::VmPaths paths;
  uint32_t mem_mib = 1024;
  uint32_t cpus = 1;
  assets::KernelSpec kernel;
  // Added to the kernel command line after kestrel's own (kernel_args, --append).
  std::string kernel_args;
  std::string accel_request;  // KESTREL_ACCEL: kvm | tcg | auto | ""
  std::vector<vm::Share> shares;
  std::optional<DiskImage> image;  // the guest root; nullopt: the host's root over 9p
  std::vector<vm::Nic> nics;       // a topology node's links (docs/topologies.md)
  // `--network user` (config key network): one user-mode NIC (unless `nics`
  // has some already), configured after SETUP by configure_run_network().
  bool user_network = false;
  bool debug = false;
  // 0: the default for the accelerator (TCG 60 s, KVM 10 s).
  std::chrono::milliseconds boot_timeout{0};
  // One-line notices for the user (e.g. "KVM did not boot; using TCG").
  std::function<void(const std::string&)> notice;
  // A signalfd: a signal arriving during boot aborts it (Interrupted).
  int signal_fd = -1;
  // Called right after QEMU starts, with its pid (to record it), and whether
  // it is a clone of a template (a warm start) rather than a fresh boot.
  std::function<void(int pid, vm::Accel accel, bool clone)> on_launch;
  // Restore a clone of this configuration's template instead of booting
  // (built on first use; docs/warm-starts.md). Falls back to a cold boot.
  bool warm = true;
  // A cold boot's QEMU dies with us, whatever kills us (SIGKILL included):
  // for VMs kestrel runs for itself, such as an image's provisioning.
  bool die_with_parent = false;
};

class Machine {
 public:
  // Boots and greets the agent on port 0. Throws Error with a message that
  // names the VM, the cause and the console log.
  static Machine boot(const BootOptions& options);

  Child& qemu() { return qemu_; }
  AgentClient& agent() { return agent_; }
  vm::Accel accel() const { return accel_; }

 private:
  Machine(Child qemu, AgentClient agent, vm::Accel accel)
      : qemu_(std::move(qemu)), agent_(std::move(agent)), accel_(accel) {}
  Child qemu_;
  AgentClient agent_;
  vm::Accel accel_;
};

// An image VM's first steps after its agent greets: SETUP mounting the disk
// as the guest root, then each service, waited for until ready. Throws
// BootFailure naming the service and its log lines when one fails.
void start_image_root(AgentClient& agent, const DiskImage& image, const vm::VmConfig& config, int vm_pidfd);

// Appends "kestrel: <line>" to the VM's console log, between what the guest
// prints (QEMU appends to it too, so lines stay whole). Milestones the host
// knows of are noted here rather than printed by the agent: under TCG, a
// line through the guest's serial console costs milliseconds on every run.
// Best effort: a log line must not fail a run.
void note_on_console(const vm::VmPaths& paths, std::string_view line);

// The line a clone's console.log has after its template's boot lines.
inline constexpr std::string_view kRestoredMarker = "kestrel: restored as a clone of a warm-start template";
// The lines of a console.log tail that this VM wrote (after kRestoredMarker).
std::string this_vms_console(const std::string& tail);

// "Error: ... ; console log: PATH" with the last lines of the logs.
std::string describe_vm_failure(const std::string& name, const vm::VmPaths& paths, const std::string& what);

// After a run's SETUP, for `--network user` (options.user_network, no
// other NICs): the NETWORK that puts its NIC at 10.0.2.15/24 with the default
// route via 10.0.2.2 and /etc/resolv.conf naming 10.0.2.3, as QEMU's
// user-mode network expects (docs/guest.md, "Network"). Nothing otherwise.
// Throws like AgentClient::network.
void configure_run_network(Machine& machine, const BootOptions& options, Deadline deadline);

}  // namespace kestrel::host
