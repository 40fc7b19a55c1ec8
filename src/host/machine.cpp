#include "host/machine.hpp"

#include <fcntl.h>
#include <sys/wait.h>

#include <cstdlib>
#include <mutex>
#include <set>

#include "assets/initramfs.hpp"
#include "assets/kernel_config.hpp"
#include "assets/modules.hpp"
#include "host/boot_plan.hpp"
#include "host/environment.hpp"
#include "host/shares.hpp"
#include "host/vm_exit.hpp"
#include "host/warm_start.hpp"
#include "util/capped_log.hpp"
#include "util/error.hpp"
#include "util/fd.hpp"
#include "util/fs.hpp"
#include "util/io.hpp"
#include "util/trace.hpp"
#include "vm/disk.hpp"

namespace kestrel::host {

std::string this_vms_console(const std::string& tail) {
  // A clone's log starts with its template's boot; what is before the
  // restore line is not this VM's (docs/deployment-dir.md).
  size_t at = tail.rfind(kRestoredMarker);
  if (at == std::string::npos) return tail;
  size_t next = tail.find('\n', at);
  return next == std::string::npos ? "" : tail.substr(next + 1);
}

void note_on_console(const vm::VmPaths& paths, std::string_view line) {
  UniqueFd fd(::open(paths.console_log().c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600));
  if (!fd) return;
  (void)try_write_all(fd.get(), "kestrel: " + std::string(line) + "\n");
}

std::string describe_vm_failure(const std::string& name, const vm::VmPaths& paths, const std::string& what) {
  std::string msg = fmt::format("VM {} {}", name, what);
  std::string qemu_tail = vm::tail_lines(paths.qemu_log(), 3);
  if (!qemu_tail.empty()) msg += "\nkestrel: qemu said: " + qemu_tail;
  // Point only at a log that is there: QEMU may have failed before making
  // it, or `kestrel destroy` removed it with the deployment.
  if (!fs::exists(paths.console_log())) return msg;
  vm::settle_console_log(paths, Deadline::after(std::chrono::seconds(1)));
  std::string console_tail = this_vms_console(vm::tail_lines(paths.console_log(), 5));
  if (!console_tail.empty()) msg += "\nkestrel: last console lines:\n" + console_tail;
  msg += "\nkestrel: console log: " + paths.console_log().string();
  return msg;
}

std::chrono::milliseconds boot_timeout(const BootOptions& o, vm::Accel accel) {
  if (o.boot_timeout.count() > 0) return o.boot_timeout;
  return accel == vm::Accel::kKvm ? std::chrono::seconds(10) : std::chrono::seconds(60);
}

namespace {

void kvm_did_not_boot(BootPlan& p, const vm::VmConfig& config, const BootOptions& o, const std::string& why) {
  if (!p.decision.automatic)
    throw BootFailure(describe_vm_failure(config.name, config.paths,
                                          fmt::format("did not boot: {}; {}", why, vm::kvm_failure_hint(p.facts))));
  vm::remember_kvm_failure(p.verdict_key, why);
  if (o.notice) o.notice(why + "; falling back to TCG (remembered for this host)");
  p.decision = {vm::Accel::kTcg, true, "TCG: KVM did not boot here"};
  p.config.accel = vm::Accel::kTcg;
}

// Says `line` once per process: a topology's nodes and an image's build and
// run each plan a boot of the same kernel.
void notice_once(const BootOptions& o, const std::string& line) {
  static std::mutex mutex;
  static std::set<std::string> said;
  if (!o.notice) return;
  {
    std::lock_guard lock(mutex);
    if (!said.insert(line).second) return;
  }
  o.notice(line);
}

// The VM's NICs: a topology's links, or the user-mode NIC of `--network user`.
std::vector<vm::Nic> boot_nics(const BootOptions& o) {
  if (!o.nics.empty() || !o.user_network) return o.nics;
  return {vm::Nic{vm::Nic::Kind::kUser, {}, {}, vm::kUserMac}};
}

// What the kernel lacks of what this VM needs, as one message ("" if nothing
// or if its configuration is unknown). `cheap_first`: for every run, first
// take =m options on trust; only where something seems missing look at the
// modules directory (modules built apart from the kernel count).
std::string kernel_lacks(const assets::Kernel& kernel, const BootOptions& o, const assets::KernelConfig& config,
                         bool cheap_first) {
  if (config.source == assets::ConfigSource::kNone) return "";
  assets::Needs needs{.disk = o.image.has_value(), .network = !boot_nics(o).empty()};
  if (cheap_first &&
      assets::lacks_message(kernel, o.kernel.image, assets::check_features(config, kernel, nullptr), needs).empty())
    return "";
  assets::ModuleTree tree(kernel.modules_dir);
  return assets::lacks_message(kernel, o.kernel.image, assets::check_features(config, kernel, &tree), needs);
}

}  // namespace

BootPlan plan_boot(const BootOptions& o) {
  BootPlan p;
  assets::Kernel kernel = assets::resolve_kernel(o.kernel);
  // What the kernel's configuration says (when kestrel can find it cheaply):
  // a feature it lacks stops the run here, with what to do about it, rather
  // than as a guest that never greets.
  assets::KernelConfig kernel_config = assets::find_kernel_config(kernel, o.kernel.image, /*thorough=*/false);
  if (std::string lacks = kernel_lacks(kernel, o, kernel_config, /*cheap_first=*/true); !lacks.empty())
    throw Error(lacks);
  trace("kernel resolved");
  assets::InitramfsInputs inputs;
  inputs.agent = assets::find_agent();
  inputs.busybox = assets::find_busybox();
  inputs.kernel = kernel;
  assets::InitramfsInUse initramfs;
  try {
    initramfs = assets::use_initramfs(inputs);
  } catch (const assets::MissingModule&) {
    // Which feature that module gives, and what else is missing: a closer
    // look at the kernel's configuration (or its modules, without one).
    std::string lacks =
        kernel_lacks(kernel, o, assets::find_kernel_config(kernel, o.kernel.image, /*thorough=*/true), false);
    if (lacks.empty()) throw;
    throw Error(lacks);
  }
  trace("initramfs ready");
  p.qemu = vm::find_qemu();
  p.kernel_release = kernel.release;

  // Only consult the verdict cache (which needs QEMU's version) when KVM is
  // a candidate at all.
  p.facts = vm::read_host_facts();
  p.decision = vm::decide_accel(o.accel_request, p.facts);
  if (p.decision.accel == vm::Accel::kKvm) {
    // KVM is in question: ask QEMU whether it has it (remembered per binary).
    p.facts.qemu_accels = vm::qemu_accelerators(p.qemu);
    p.decision = vm::decide_accel(o.accel_request, p.facts);
  }
  if (p.decision.accel == vm::Accel::kKvm && p.decision.automatic) {
    p.verdict_key = vm::kvm_verdict_key(p.facts, vm::qemu_version(p.qemu), kernel.release);
    p.decision = vm::decide_accel(o.accel_request, p.facts, vm::remembered_kvm_failure(p.verdict_key));
  }

  vm::VmConfig& c = p.config;
  c.name = o.name;
  c.paths = o.paths;
  c.kernel = kernel.image;
  c.initramfs = initramfs.path;
  p.initramfs_hold = std::move(initramfs.hold);
  c.mem_mib = o.mem_mib;
  c.cpus = o.cpus;
  c.shares = o.shares;
  c.nics = boot_nics(o);
  if (o.image) c.disk = o.image->in_place ? o.image->base : c.paths.dir / "disk.qcow2";
  if (c.shares.size() < kMinShareDevices) {
    make_dirs(c.paths.empty_share(), 0700);
    pad_share_devices(c.shares, c.paths.empty_share());
  }
  c.debug = o.debug;
  c.accel = p.decision.accel;
  c.kernel_args = o.kernel_args;
  c.pci_noacpi = assets::keeps_pci_noacpi(kernel_config);
  if (!c.pci_noacpi)
    notice_once(o, fmt::format("kernel {} lacks CONFIG_X86_MPPARSE: booting without pci=noacpi (which would "
                               "disable its local APIC)",
                               assets::kernel_display_name(kernel, o.kernel.image)));
  // The console log, capped (util/capped_log.hpp): KESTREL_CONSOLE_LOG_MAX.
  c.console_logger = assets::find_agent();
  if (const char* max = std::getenv("KESTREL_CONSOLE_LOG_MAX"); max && *max) {
    auto bytes = parse_log_max(max);
    if (!bytes)
      fail(
          "KESTREL_CONSOLE_LOG_MAX: '{}' is not a size for the console log: bytes, or a number and K, M or G; at "
          "least 64K",
          max);
    c.console_log_max = *bytes;
  }
  vm::check_cpus(c);  // before a template build or a boot is tried
  vm::check_kernel_cmdline(c);
  return p;
}

void start_image_root(AgentClient& agent, const DiskImage& image, const vm::VmConfig& config, int vm_pidfd) {
  // The services started next inherit the host's limits too.
  proto::SetupRequest setup = setup_request("", {{"/dev/vda", "ext4", proto::MountKind::kDiskRoot}});
  try {
    agent.setup(setup, Deadline::after(std::chrono::seconds(30)), vm_pidfd);
  } catch (const VmGone&) {
    throw;
  } catch (const Error& e) {
    throw BootFailure(describe_vm_failure(
        config.name, config.paths, fmt::format("could not mount image {} as its root: {}", image.name, e.what())));
  }
  trace("image root mounted");
  if (image.in_place) return;
  for (const auto& service : image.services) {
    try {
      agent.service(service, Deadline::after(std::chrono::milliseconds(service.timeout_ms) + std::chrono::seconds(10)),
                    vm_pidfd);
    } catch (const VmGone&) {
      throw;
    } catch (const Error& e) {
      throw BootFailure(describe_vm_failure(
          config.name, config.paths,
          fmt::format("could not start service {} of image {}: {}", service.name, image.name, e.what())));
    }
    trace("service started");
  }
}

Booted boot_cold(BootPlan& p, vm::VmConfig config, const BootOptions& o, const vm::LaunchExtras& extras) {
  make_dirs(config.paths.dir, 0700);
  if (o.image && !o.image->in_place) vm::create_overlay(o.image->base, config.disk);
  for (;;) {
    config.accel = p.decision.accel;
    trace("launching QEMU");
    Child qemu_child = vm::launch_qemu(config, p.qemu, extras);
    trace("QEMU launched");
    if (o.on_launch) o.on_launch(qemu_child.pid(), config.accel, false);
    auto timeout = boot_timeout(o, config.accel);
    try {
      AgentClient agent =
          AgentClient::connect(config.paths, 0, Deadline::after(timeout), qemu_child.pidfd(), o.signal_fd);
      trace("agent greeted");
      if (o.image) start_image_root(agent, *o.image, config, qemu_child.pidfd());
      return Booted{std::move(qemu_child), std::move(agent), config.accel};
    } catch (const AgentTimeout& e) {
      qemu_child.kill_and_reap();
      auto secs = std::chrono::duration_cast<std::chrono::seconds>(timeout).count();
      if (config.accel == vm::Accel::kKvm) {
        kvm_did_not_boot(p, config, o, fmt::format("no agent greeting within {} s under KVM", secs));
        continue;
      }
      throw BootFailure(describe_vm_failure(
          config.name, config.paths,
          fmt::format("did not boot: no agent greeting within {} s under TCG ({})", secs, e.what())));
    } catch (const VmGone&) {
      auto status = qemu_child.wait(Deadline::after(std::chrono::seconds(1)));
      std::string exit = explain_vm_exit(config.paths, status);
      // KVM that makes QEMU abort or exit before the greeting (AMD hosts with
      // PVM: "failed to set MSR", SIGABRT) is the same verdict as one that hangs.
      if (config.accel == vm::Accel::kKvm && !killed_from_outside(status)) {
        kvm_did_not_boot(p, config, o, "QEMU failed under KVM before the agent greeted: " + exit);
        continue;
      }
      std::string message = describe_vm_failure(config.name, config.paths, "failed to start: " + exit);
      // Killed from outside (by the user, the OOM killer): not a reason to try again.
      if (status && WIFSIGNALED(*status)) throw BootFailure(message);
      throw Error(message);
    }
  }
}

Machine Machine::boot(const BootOptions& o) {
  BootPlan plan = plan_boot(o);
  std::optional<Booted> booted;
  if (o.warm) booted = boot_warm(plan, o);
  if (!booted) booted = boot_cold(plan, plan.config, o, {.die_with_parent = o.die_with_parent});
  return Machine(std::move(booted->qemu), std::move(booted->agent), booted->accel);
}

void configure_run_network(Machine& machine, const BootOptions& options, Deadline deadline) {
  if (!options.user_network || !options.nics.empty()) return;
  proto::NetworkRequest r;
  r.nics.push_back({vm::kUserMac, vm::kUserAddress, vm::kUserNetworkPrefix});
  r.routes.push_back({0, 0, vm::kUserGateway});
  r.resolv_conf = fmt::format("nameserver {}\n", vm::kUserDns);
  machine.agent().network(r, deadline, machine.qemu().pidfd());
}

}  // namespace kestrel::host
