#include "host/warm_start.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "host/template_store.hpp"
#include "host/vm_exit.hpp"
#include "util/error.hpp"
#include "util/fs.hpp"
#include "util/lockfile.hpp"
#include "util/signals.hpp"
#include "util/trace.hpp"
#include "vm/disk.hpp"
#include "vm/host_facts.hpp"
#include "vm/qmp.hpp"

namespace kestrel::host {

namespace {

using namespace std::chrono_literals;
using nlohmann::json;

const json kIgnoreShared = {{"capabilities", json::array({{{"capability", "x-ignore-shared"}, {"state", true}}})}};

void save_running(const vm::VmConfig& t, Booted& b, const TemplateFiles& build, const BootOptions& o);

// Boots the template VM, lets the agent greet, and saves the running VM with
// QEMU's migration: devices to `state`, memory skipped (x-ignore-shared)
// because it already is in the shared memory file. Returns the accelerator
// the template really got (a KVM boot may have fallen back to TCG).
vm::Accel save_new_template(BootPlan& plan, const TemplateFiles& build, const BootOptions& o) {
  // The template VM uses the run's own VM directory: if it fails, its logs
  // are where the run's message points.
  vm::VmConfig t = plan.config;
  fs::path empty = t.paths.dir / "template-shares";
  // The template mounts nothing; its shares only have to exist.
  for (auto& share : t.shares) {
    share.path = empty / share.tag;
    share.read_only = true;
    make_dirs(share.path, 0700);
  }
  // Nor are its NICs linked: their sockets are its own (left by the
  // template's QEMU, they would keep a clone from binding the run's).
  for (size_t k = 0; k < t.nics.size(); ++k) {
    t.nics[k].local = empty / ("nic" + std::to_string(k) + ".sock");
    t.nics[k].remote = empty / ("peer" + std::to_string(k) + ".sock");
  }
  make_dirs(empty, 0700);
  t.memory_file = build.memory();
  t.memory_shared = true;
  if (!t.disk.empty()) t.disk = build.disk();  // boot_cold makes it, an overlay of the image
  BootOptions bo = o;
  bo.on_launch = nullptr;  // not the run's VM
  // If we die (even by SIGKILL), so does the half-made template.
  Booted b = boot_cold(plan, t, bo, {.die_with_parent = true});
  trace("template booted");
  { AgentClient done = std::move(b.agent); }  // hang up: clones greet afresh
  // Let the guest finish what it does right after boot (the kernel refines
  // its TSC calibration a second after boot, for one), so that clones start
  // idle instead of each doing it again.
  auto settle = plan.config.accel == vm::Accel::kKvm ? 300 : 1200;
  for (auto until = Deadline::after(std::chrono::milliseconds(settle)); !until.expired();)
    sleep_or_throw(o.signal_fd, until.poll_timeout_ms(), SIGWINCH);

  try {
    save_running(t, b, build, o);
  } catch (const Error&) {
    // Killed from outside while being saved: the run fails as it would for
    // its own VM, instead of booting another.
    if (auto status = b.qemu.wait(Deadline::after(100ms)); status && WIFSIGNALED(*status))
      throw BootFailure(describe_vm_failure(t.name, t.paths, "stopped: " + explain_vm_exit(t.paths, status)));
    throw;
  }
  write_file_atomic(build.console_log(), read_file_if_exists(t.paths.console_log()).value_or(""));
  // Frozen: clones read through it, and QEMU opens a backing file read-only.
  if (!t.disk.empty() && ::chmod(t.disk.c_str(), 0444) != 0) fail_errno("cannot make {} read-only", t.disk.string());
  remove_tree(empty);
  return b.accel;
}

// Saves the template VM `b`: devices to build.state(), then QEMU quits.
void save_running(const vm::VmConfig& t, Booted& b, const TemplateFiles& build, const BootOptions& o) {
  Deadline deadline = Deadline::after(30s);
  vm::Qmp qmp = vm::Qmp::connect(t.paths.qmp(), deadline, b.qemu.pidfd());
  UniqueFd state(::open(build.state().c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
  if (!state) fail_errno("cannot create {}", build.state().string());
  qmp.pass_fd("state", state.get(), deadline);
  qmp.execute("migrate-set-capabilities", kIgnoreShared, deadline);
  qmp.execute("migrate", {{"uri", "fd:state"}}, deadline);
  for (;;) {
    std::string status = qmp.execute("query-migrate", deadline).value("status", "");
    if (status == "completed") break;
    if (status == "failed" || status == "cancelled") fail("QEMU could not save the template: migration {}", status);
    if (deadline.expired()) fail("QEMU did not finish saving the template in time");
    sleep_or_throw(o.signal_fd, 2, SIGWINCH);
  }
  if (::fsync(state.get()) != 0) fail_errno("cannot write {}", build.state().string());
  trace("template saved");
  try {
    qmp.execute("quit", deadline);
  } catch (const Error&) {
    // QEMU may close the monitor before answering; it is quitting either way.
  }
  if (!b.qemu.wait(Deadline::after(5s))) b.qemu.kill_and_reap();
}

// Builds the template of `key` (we hold its lock). Returns it, or nullopt if
// what was built does not match the key (KVM fell back to TCG).
std::optional<TemplateInUse> build_template(BootPlan& plan, const std::string& key, const BootOptions& o) {
  TemplateFiles build = template_build_files(key);
  remove_tree(build.dir);  // a builder that died left it
  make_dirs(build.dir, 0700);
  if (o.notice) o.notice("saving a warm-start template of this VM configuration (once; later runs restore it)");
  auto started = std::chrono::steady_clock::now();
  vm::Accel wanted = plan.config.accel;
  vm::Accel got = save_new_template(plan, build, o);
  if (got != wanted) {
    remove_tree(build.dir);
    return std::nullopt;
  }
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - started);
  json description = {{"kernel", plan.kernel_release},        {"qemu", vm::qemu_version(plan.qemu)},
                      {"mem_mib", plan.config.mem_mib},       {"cpus", plan.config.cpus},
                      {"accel", vm::accel_name(got)},         {"build_ms", ms.count()},
                      {"host", vm::snapshot_host(plan.facts)}};
  if (o.image) {
    description["image"] = o.image->id;
    description["image_name"] = o.image->name;
  }
  TemplateInUse t = publish_template(key, description);
  prune_templates(16, std::chrono::hours(24 * 14), t.files.dir);
  return t;
}

// True if process `pid` is stopped (SIGSTOP, a debugger): it will not finish
// anything until someone continues it.
bool is_stopped(int pid) {
  auto stat = read_file_if_exists("/proc/" + std::to_string(pid) + "/stat");
  if (!stat) return false;
  size_t paren = stat->rfind(')');  // the command name may hold anything
  return paren != std::string::npos && paren + 2 < stat->size() &&
         ((*stat)[paren + 2] == 'T' || (*stat)[paren + 2] == 't');
}

}  // namespace

LockFile wait_for_template_builder(const std::string& key, std::chrono::milliseconds limit, const BootOptions& o) {
  constexpr auto kSilent = 1s, kStoppedLimit = 5s;
  auto started = std::chrono::steady_clock::now();
  Deadline give_up = Deadline::after(limit);
  bool said = false;
  bool stopped = false;
  auto stopped_since = started;
  auto last_check = started;
  for (;;) {
    LockFile lock = LockFile::try_lock(template_lock(key));
    if (lock.locked()) return lock;
    auto now = std::chrono::steady_clock::now();
    int pid = builder_pid(key);
    std::string who = pid > 0 ? fmt::format("pid {}", pid) : "another kestrel";
    if (!said && now - started >= kSilent) {
      said = true;
      if (o.notice)
        o.notice(fmt::format("waiting for the warm-start template being built by {} (up to {} s, then booting cold)",
                             who, std::chrono::duration_cast<std::chrono::seconds>(limit).count()));
    }
    if (pid > 0 && now - last_check >= 500ms) {
      last_check = now;
      bool now_stopped = is_stopped(pid);
      if (now_stopped && !stopped) stopped_since = now;
      stopped = now_stopped;
    }
    bool stuck = stopped && now - stopped_since >= kStoppedLimit;
    if (stuck || give_up.expired()) {
      auto waited = std::chrono::duration_cast<std::chrono::seconds>(now - started).count();
      if (o.notice)
        o.notice(fmt::format("gave up waiting for the warm-start template after {} s ({} {}); booting cold", waited,
                             who, stuck ? "is stopped" : "is still building it"));
      return LockFile();
    }
    sleep_or_throw(o.signal_fd, 20, SIGWINCH);
  }
}

namespace {

// A template for the plan's configuration: found, built by us, or built by
// another run we waited for; held until the clone has started. nullopt if
// none could be had.
std::optional<TemplateInUse> obtain_template(BootPlan& plan, const std::string& key, const BootOptions& o) {
  make_dirs(templates_dir(), 0755);
  std::string problem;
  auto found = find_template(key, plan.config.mem_mib, &problem);
  if (!problem.empty() && o.notice) o.notice("the warm-start template was damaged (" + problem + "); rebuilding it");
  if (found) return found;

  LockFile lock = LockFile::try_lock(template_lock(key));
  if (!lock.locked()) {
    // Another run is building it: a restore after waiting beats a boot of our own.
    lock = wait_for_template_builder(key, boot_timeout(o, plan.config.accel) + 30s, o);
    if (!lock.locked()) return std::nullopt;
  }
  if ((found = find_template(key, plan.config.mem_mib))) return found;
  record_builder(lock);
  struct ForgetBuilder {  // a stale pid would mislead the next waiter
    const LockFile& lock;
    ~ForgetBuilder() { (void)!::ftruncate(lock.fd(), 0); }
  } forget{lock};
  try {
    return build_template(plan, key, o);
  } catch (const Interrupted&) {
    throw;
  } catch (const BootFailure&) {
    remove_tree(template_build_files(key).dir);
    throw;  // a cold boot of our own would fail the same way
  } catch (const Error& e) {
    if (o.notice) o.notice(std::string("cannot save a warm-start template: ") + e.what() + "; booting cold");
    remove_tree(template_build_files(key).dir);
    return std::nullopt;
  }
}

// Launches a clone of `t`: QEMU maps the template's memory privately
// (copy-on-write) and loads the device state, then the guest runs on.
Booted restore_clone(BootPlan& plan, const TemplateFiles& t, const BootOptions& o) {
  vm::VmConfig c = plan.config;
  c.memory_file = t.memory();
  c.memory_shared = false;
  c.incoming = true;
  make_dirs(c.paths.dir, 0700);
  if (!c.disk.empty()) vm::create_overlay(t.disk(), c.disk);
  // The clone's console log starts with the boot its memory comes from.
  write_file_atomic(c.paths.console_log(),
                    read_file_if_exists(t.console_log()).value_or("") + std::string(kRestoredMarker) +
                        "; the lines above are the template's boot\n",
                    0600);
  UniqueFd state(::open(t.state().c_str(), O_RDONLY | O_CLOEXEC));
  if (!state) fail_errno("cannot open {}", t.state().string());
  constexpr int kStateFd = 3;
  trace("launching QEMU (clone)");
  Child qemu = vm::launch_qemu(c, plan.qemu, {.fds = {{state.get(), kStateFd}}});
  state.reset();
  if (o.on_launch) o.on_launch(qemu.pid(), c.accel, true);
  Deadline deadline = Deadline::after(c.accel == vm::Accel::kKvm ? 10s : 30s);
  try {
    vm::Qmp qmp = vm::Qmp::connect(c.paths.qmp(), deadline, qemu.pidfd());
    qmp.execute("migrate-set-capabilities", kIgnoreShared, deadline);
    qmp.execute("migrate-incoming", {{"uri", "fd:" + std::to_string(kStateFd)}}, deadline);
    trace("clone restoring");
    AgentClient agent = AgentClient::connect(c.paths, 0, deadline, qemu.pidfd(), o.signal_fd);
    trace("agent greeted (clone)");
    return Booted{std::move(qemu), std::move(agent), c.accel};
  } catch (const Error&) {
    // Killed from outside: the run fails as it would after a boot.
    if (auto status = qemu.wait(Deadline::after(100ms)); status && WIFSIGNALED(*status))
      throw BootFailure(describe_vm_failure(c.name, c.paths, "failed to start: " + explain_vm_exit(c.paths, status)));
    throw;
  }
}

}  // namespace

std::optional<Booted> boot_warm(BootPlan& plan, const BootOptions& o) {
  std::string key;
  try {
    key = template_key(plan.config, plan.qemu, o.image ? o.image->id : "", vm::snapshot_host(plan.facts));
  } catch (const Error&) {
    // E.g. QEMU cannot tell its version: a cold boot will say what is wrong.
    return std::nullopt;
  }
  std::optional<TemplateInUse> t = obtain_template(plan, key, o);
  if (!t) return std::nullopt;
  mark_template_used(t->files);
  std::string failure;
  try {
    return restore_clone(plan, t->files, o);  // t's hold ends when we return
  } catch (const Interrupted&) {
    throw;
  } catch (const BootFailure&) {
    throw;  // not the template's fault
  } catch (const Error& e) {
    failure = describe_vm_failure(o.name, o.paths, "could not be restored: " + std::string(e.what()));
  }
  t->hold.unlock();
  // The template is shared: only if this run's own cold boot works is the
  // template to blame (a cause of the run's own, e.g. a runtime dir too long
  // for a socket path, fails both, and the template stays).
  if (o.notice) o.notice(fmt::format("warm start failed ({}); booting cold", failure));
  Booted cold = boot_cold(plan, plan.config, o);
  LockFile lock = LockFile::try_lock(template_lock(key));
  if (lock.locked() && remove_template(t->files.dir) == Removal::kRemoved && o.notice)
    o.notice("removed the warm-start template that could not be restored; the next run rebuilds it");
  return cold;
}

}  // namespace kestrel::host
