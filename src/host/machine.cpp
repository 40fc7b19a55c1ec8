#include "host/machine.hpp"

#include <sys/utsname.h>

#include <cstdlib>

#include "assets/initramfs.hpp"
#include "host/vm_exit.hpp"
#include "util/error.hpp"
#include "util/fs.hpp"
#include "util/trace.hpp"

namespace kestrel::host {

namespace {

std::string verdict_key(const std::string& qemu, const assets::Kernel& kernel) {
  struct utsname u;
  ::uname(&u);
  return fmt::format("host={} qemu={} guest={}", u.release, vm::qemu_version(qemu), kernel.release);
}

std::chrono::milliseconds default_boot_timeout(vm::Accel accel) {
  return accel == vm::Accel::kKvm ? std::chrono::seconds(10) : std::chrono::seconds(60);
}

}  // namespace

std::string describe_vm_failure(const std::string& name, const vm::VmPaths& paths, const std::string& what) {
  std::string msg = fmt::format("VM {} {}", name, what);
  std::string qemu_tail = vm::tail_lines(paths.qemu_log(), 3);
  if (!qemu_tail.empty()) msg += "\nkestrel: qemu said: " + qemu_tail;
  std::string console_tail = vm::tail_lines(paths.console_log(), 5);
  if (!console_tail.empty()) msg += "\nkestrel: last console lines:\n" + console_tail;
  msg += "\nkestrel: console log: " + paths.console_log().string();
  return msg;
}

Machine Machine::boot(const BootOptions& o) {
  auto started = std::chrono::steady_clock::now();
  assets::Kernel kernel = assets::resolve_kernel(o.kernel);
  trace("kernel resolved");
  assets::InitramfsInputs inputs;
  inputs.agent = assets::find_agent();
  inputs.busybox = assets::find_busybox();
  inputs.kernel = kernel;
  fs::path initramfs = assets::ensure_initramfs(inputs);
  trace("initramfs ready");
  std::string qemu = vm::find_qemu();

  // Only consult the verdict cache (which needs QEMU's version) when KVM is
  // a candidate at all.
  vm::HostFacts facts = vm::probe_host("");
  vm::AccelDecision decision = vm::decide_accel(o.accel_request, facts);
  std::string key;
  if (decision.accel == vm::Accel::kKvm && decision.automatic) {
    key = verdict_key(qemu, kernel);
    facts = vm::probe_host(key);
    decision = vm::decide_accel(o.accel_request, facts);
  }

  make_dirs(o.paths.dir, 0700);
  vm::VmConfig config;
  config.name = o.name;
  config.paths = o.paths;
  config.kernel = kernel.image;
  config.initramfs = initramfs;
  config.mem_mib = o.mem_mib;
  config.cpus = o.cpus;
  config.shares = o.shares;
  config.debug = o.debug;

  for (;;) {
    config.accel = decision.accel;
    trace("launching QEMU");
    Child qemu_child = vm::launch_qemu(config, qemu);
    trace("QEMU launched");
    if (o.on_launch) o.on_launch(qemu_child.pid(), config.accel);
    auto timeout = o.boot_timeout.count() > 0 ? o.boot_timeout : default_boot_timeout(config.accel);
    try {
      AgentClient agent = AgentClient::connect(o.paths, 0, Deadline::after(timeout), qemu_child.pidfd(), o.signal_fd);
      trace("agent greeted");
      Machine m(std::move(qemu_child), std::move(agent), config.accel);
      m.boot_time_ = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - started);
      return m;
    } catch (const AgentTimeout& e) {
      qemu_child.kill_and_reap();
      auto secs = std::chrono::duration_cast<std::chrono::seconds>(timeout).count();
      if (config.accel == vm::Accel::kKvm) {
        std::string why = fmt::format("no agent greeting within {} s under KVM", secs);
        if (decision.automatic) {
          vm::remember_kvm_failure(key, why);
          if (o.notice) o.notice(why + "; falling back to TCG (remembered for this host)");
          decision = {vm::Accel::kTcg, true, "TCG: KVM did not boot here"};
          continue;
        }
        throw Error(describe_vm_failure(o.name, o.paths,
                                        fmt::format("did not boot: {}; {}", why, vm::kvm_failure_hint(facts))));
      }
      throw Error(describe_vm_failure(
          o.name, o.paths, fmt::format("did not boot: no agent greeting within {} s under TCG ({})", secs, e.what())));
    } catch (const VmGone&) {
      auto status = qemu_child.wait(Deadline::after(std::chrono::seconds(1)));
      throw Error(describe_vm_failure(o.name, o.paths, "failed to start: " + explain_vm_exit(o.paths, status)));
    }
  }
}

}  // namespace kestrel::host
