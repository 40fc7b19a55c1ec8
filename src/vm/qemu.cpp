#include "vm/qemu.hpp"

#include <fcntl.h>
#include <linux/capability.h>
#include <sched.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <functional>

#include "assets/cache.hpp"
#include "proto/frame.hpp"
#include "util/allocation.hpp"
#include "util/error.hpp"
#include "util/fd.hpp"
#include "util/fs.hpp"
#include "util/lockfile.hpp"
#include "util/strings.hpp"

namespace kestrel::vm {

std::string kernel_cmdline(const VmConfig& c) {
  // Tweaks from Kata/Firecracker that shave boot time under emulation: skip
  // timer and TSC checks, crypto self-tests and legacy i8042 probing.
  // pci=noacpi routes PCI interrupts by the BIOS's table instead of ACPI
  // interrupt links, whose AML cost ~0.1 s per virtio device under TCG
  // (measured: 4 devices, /init to 9p ready 0.69 s -> 0.22 s). A kernel that
  // cannot read that table (no CONFIG_X86_MPPARSE) switches its local APIC
  // off instead (one CPU): plan_boot leaves it out for those.
  // A test VM is a throw-away machine; what the Debian kernel does for a
  // long-lived one only costs time, most of all under emulation:
  // mitigations=off (retpolines make every indirect branch slow),
  // init_on_alloc=0 (zeroing every page it allocates), transparent huge
  // pages only where asked for (zeroing 2 MB per fault), psi=0 (pressure
  // accounting on every task switch).
  std::string line =
      "console=ttyS0 panic=-1 tsc=reliable no_timer_check cryptomgr.notests "
      "i8042.noaux i8042.nomux i8042.nopnp i8042.dumbkbd 8250.nr_uarts=1 "
      "random.trust_cpu=on";
  if (c.pci_noacpi) line += " pci=noacpi";
  line += " mitigations=off init_on_alloc=0 transparent_hugepage=madvise psi=0";
  // TCG finds translated code by virtual address: with address space
  // randomization every new process translates its shared libraries afresh
  // (measured: a dynamic /bin/true 32 ms -> 11 ms in the guest, `kestrel exec
  // NAME true` about halved). Throwaway test VMs do not need ASLR; KVM keeps it.
  if (c.accel == Accel::kTcg) line += " norandmaps";
  line += c.debug ? " loglevel=7 kestrel.debug=1" : " quiet";
  // The agent loads virtio_net at boot, so that a template's clones resume
  // with their NICs probed (docs/guest.md).
  if (!c.nics.empty()) line += " kestrel.net=1";
  // A warm-start clone resumes the template's memory, kernel command line
  // included, so a template (and its clones) boot under a neutral name
  // instead of the first run's; each clone learns its own from SETUP.
  line += " kestrel.name=" + (c.memory_file.empty() ? c.name : std::string("kestrel-template"));
  if (!c.kernel_args.empty()) line += " " + c.kernel_args;
  return line;
}

void check_kernel_cmdline(const VmConfig& c) {
  // A template boots under a neutral name, a cold boot under its own: check
  // the longer.
  VmConfig as_template = c;
  as_template.memory_file = "template";
  size_t length = std::max(kernel_cmdline(c).size(), kernel_cmdline(as_template).size());
  if (length <= kMaxKernelCmdline) return;
  size_t own = length - (c.kernel_args.empty() ? 0 : c.kernel_args.size() + 1);
  fail(
      "the guest kernel's command line would be {} bytes, more than the {} Linux takes on x86 (COMMAND_LINE_SIZE "
      "2048 with its NUL; it cuts off the rest): kestrel's own flags take {}, kernel_args (--append) {}; shorten "
      "kernel_args by {} byte{}",
      length, kMaxKernelCmdline, own, c.kernel_args.size(), length - kMaxKernelCmdline,
      length - kMaxKernelCmdline == 1 ? "" : "s");
}

std::string opt_value(std::string_view value) {
  std::string out;
  out.reserve(value.size());
  for (char ch : value) {
    out += ch;
    if (ch == ',') out += ',';
  }
  return out;
}

std::string nic_id(size_t index) { return "nic" + std::to_string(index); }

// A virtio PCI device's options. Under TCG a guest's notification of a queue
// is handled at once on the vCPU's thread instead of through an eventfd to
// QEMU's main loop: one thread hop less for each agent frame, 9p request and
// disk I/O (measured: a stat on a write-through 9p share 0.83 -> 0.66 ms).
// Under KVM, ioeventfd spares an exit to user space and stays on.
namespace {
std::string virtio_device(const VmConfig& c, std::string spec) {
  if (c.accel == Accel::kTcg) spec += ",ioeventfd=off";
  return spec;
}
}  // namespace

std::vector<std::string> qemu_argv(const VmConfig& c, const std::string& qemu) {
  const VmPaths& p = c.paths;
  std::vector<std::string> a = {qemu,       "-name", c.name,      "-nodefaults", "-no-user-config",
                                "-display", "none",  "-no-reboot"};
  // -M pc: microvm hung in TSC calibration under TCG with a loaded CPU.
  std::string machine = "pc";
  if (!c.memory_file.empty()) machine += ",memory-backend=ram0";
  if (c.accel == Accel::kKvm) {
    a.insert(a.end(), {"-machine", machine + ",accel=kvm", "-cpu", "host"});
  } else {
    a.insert(a.end(), {"-machine", machine, "-accel", "tcg,tb-size=256", "-cpu", "max"});
  }
  a.insert(a.end(), {"-m", std::to_string(c.mem_mib), "-smp", std::to_string(c.cpus)});
  if (!c.memory_file.empty()) {
    a.insert(a.end(), {"-object", fmt::format("memory-backend-file,id=ram0,size={}M,mem-path={},share={}", c.mem_mib,
                                              opt_value(c.memory_file.string()), c.memory_shared ? "on" : "off")});
  }
  a.insert(a.end(), {"-kernel", c.kernel.string(), "-initrd", c.initramfs.string(), "-append", kernel_cmdline(c)});
  std::string console_log =
      c.console_logger.empty() ? p.console_log().string() : "/proc/self/fd/" + std::to_string(kConsolePipeFd);
  a.insert(a.end(), {"-chardev",
                     "socket,id=console,path=" + opt_value(p.serial().string()) +
                         ",server=on,wait=off,logfile=" + opt_value(console_log) + ",logappend=on",
                     "-serial", "chardev:console"});
  // deploy/ finds a deployment's QEMU by this argument in /proc/PID/cmdline.
  a.insert(a.end(), {"-qmp", "unix:" + opt_value(p.qmp().string()) + ",server=on,wait=off"});
  a.insert(a.end(), {"-device", virtio_device(c, "virtio-serial-pci,id=vser")});
  for (int k = 0; k < proto::kPortCount; ++k) {
    std::string id = "agent" + std::to_string(k);
    a.insert(a.end(), {"-chardev",
                       "socket,id=" + id + ",path=" + opt_value(p.agent(k).string()) + ",server=on,wait=off", "-device",
                       "virtserialport,bus=vser.0,chardev=" + id + ",name=" + proto::kPortPrefix + std::to_string(k)});
  }
  int n = 0;
  for (const auto& s : c.shares) {
    std::string id = "fs" + std::to_string(n++);
    std::string fsdev =
        "local,id=" + id + ",path=" + opt_value(s.path.string()) + ",security_model=none,multidevs=remap";
    if (s.read_only) fsdev += ",readonly=on";
    a.insert(a.end(),
             {"-fsdev", fsdev, "-device", virtio_device(c, "virtio-9p-pci,fsdev=" + id + ",mount_tag=" + s.tag)});
  }
  if (!c.disk.empty()) {
    // The node name and id are part of the device state a clone loads.
    a.insert(a.end(),
             {"-drive",
              "file=" + opt_value(c.disk.string()) + ",format=qcow2,if=none,id=drive0,node-name=disk0,discard=unmap",
              "-device", virtio_device(c, "virtio-blk-pci,drive=drive0")});
  }
  for (size_t k = 0; k < c.nics.size(); ++k) {
    const Nic& nic = c.nics[k];
    std::string netdev = "net" + std::to_string(k);
    if (nic.kind == Nic::Kind::kUser) {
      a.insert(a.end(), {"-netdev", "user,id=" + netdev});
    } else {
      a.insert(a.end(),
               {"-netdev", "dgram,id=" + netdev + ",local.type=unix,local.path=" + opt_value(nic.local.string()) +
                               ",remote.type=unix,remote.path=" + opt_value(nic.remote.string())});
    }
    std::string device = "virtio-net-pci,netdev=" + netdev + ",id=" + nic_id(k);
    if (!nic.mac.empty()) device += ",mac=" + nic.mac;
    a.insert(a.end(), {"-device", virtio_device(c, device)});
  }
  a.insert(a.end(), {"-device", virtio_device(c, "virtio-rng-pci")});
  if (c.incoming) a.insert(a.end(), {"-incoming", "defer"});
  return a;
}

std::string find_qemu() {
  if (const char* env = std::getenv("KESTREL_QEMU"); env && *env) return env;
  if (auto found = find_in_path("qemu-system-x86_64")) return *found;
  fail("qemu-system-x86_64 not found in PATH; install it: sudo apt-get install qemu-system-x86");
}

namespace {

// What `QEMU ARGS...` prints, reduced by `parse` to one line, remembered in
// the cache file `cache_name` per binary identity (path, inode, size,
// mtime): asking QEMU costs a process start.
std::string ask_qemu(const std::string& qemu, const std::vector<std::string>& args, const char* cache_name,
                     const std::function<std::string(const std::string&)>& parse) {
  struct stat st;
  if (::stat(qemu.c_str(), &st) != 0) fail_errno("cannot stat {}", qemu);
  std::string key = fmt::format("{}:{}:{}:{}", qemu, st.st_ino, st.st_size, st.st_mtim.tv_sec);
  fs::path cache = assets::cache_dir() / cache_name;
  if (auto text = read_file_if_exists(cache)) {
    for (const auto& line : split(*text, '\n')) {
      if (line.size() > key.size() && line.compare(0, key.size(), key) == 0 && line[key.size()] == ' ')
        return line.substr(key.size() + 1);
    }
  }
  TempDir tmp(assets::cache_dir(), ".qemu-ask-");
  fs::path out_file = tmp.path() / "out";
  UniqueFd out(::open(out_file.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0600));
  if (!out) fail_errno("cannot create {}", out_file.string());
  SpawnOptions o;
  o.argv = {qemu};
  o.argv.insert(o.argv.end(), args.begin(), args.end());
  o.stdout_fd = out.get();
  Child child = Child::spawn(o);
  auto status = child.wait(Deadline::after(std::chrono::seconds(10)));
  if (!status || shell_status(*status) != 0) fail("`{} {}` failed", qemu, join(args, " "));
  std::string answer = parse(read_file(out_file));
  std::string all = read_file_if_exists(cache).value_or("");
  write_file_atomic(cache, all + key + " " + answer + "\n");
  return answer;
}

}  // namespace

std::string qemu_version(const std::string& qemu) {
  return ask_qemu(qemu, {"--version"}, "qemu-versions", [](const std::string& text) {
    std::string version = "unknown";
    if (auto pos = text.find("version "); pos != std::string::npos) {
      auto end = text.find_first_of(" \n", pos + 8);
      version = text.substr(pos + 8, end - pos - 8);
    }
    return version;
  });
}

std::vector<std::string> qemu_accelerators(const std::string& qemu) {
  // "Accelerators supported in QEMU binary:\ntcg\nkvm\n"
  std::string line = ask_qemu(qemu, {"-accel", "help"}, "qemu-accelerators", [](const std::string& text) {
    std::vector<std::string> names;
    for (const auto& l : split(text, '\n')) {
      std::string_view word = trim(l);
      if (word.empty() || word.find(' ') != std::string_view::npos || word.find(':') != std::string_view::npos)
        continue;
      names.emplace_back(word);
    }
    return names.empty() ? std::string("none") : join(names, " ");
  });
  std::vector<std::string> out;
  for (const auto& w : split(line, ' '))
    if (!w.empty() && w != "none") out.push_back(w);
  return out;
}

uint32_t max_tcg_cpus(long host_cpus) { return kTcgCpusPerHostCpu * static_cast<uint32_t>(std::max(1L, host_cpus)); }

void check_cpus(const VmConfig& c, long host_cpus) {
  if (c.accel != Accel::kTcg || c.cpus <= max_tcg_cpus(host_cpus)) return;
  fail(
      "cannot give VM {} {} vCPUs under TCG: this host has {} CPU(s), and TCG boots at most {} vCPUs per host CPU "
      "within the boot timeout (the guest's SMP start-up waits on every vCPU thread); use --cpus {} or fewer, or KVM",
      c.name, c.cpus, host_cpus, kTcgCpusPerHostCpu, max_tcg_cpus(host_cpus));
}

// The CPUs QEMU's threads may run on (a cpuset can give us fewer than the host has).
void check_cpus(const VmConfig& c) { check_cpus(c, affinity_cpus()); }

namespace {

// Blocked in QEMU and its console logger. Only kestrel ends a VM (SIGKILL,
// or its QMP `quit`): a signal meant for the whole job (scancel, a
// terminal's ^C to a group) reaches kestrel, which passes it to the program
// and tears the VM down itself.
const std::vector<int> kJobSignals = {SIGTERM, SIGINT, SIGHUP};

}  // namespace

Child launch_qemu(const VmConfig& c, const std::string& qemu, const LaunchExtras& extras) {
  check_cpus(c);  // also after a fall-back from KVM to TCG
  UniqueFd log(::open(c.paths.qemu_log().c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644));
  if (!log) fail_errno("cannot create {}", c.paths.qemu_log().string());
  SpawnOptions o;
  o.argv = qemu_argv(c, qemu);
  o.stdout_fd = log.get();
  o.stderr_fd = log.get();
  o.new_session = true;
  o.extra_fds = extras.fds;
  Pipe console;
  if (!c.console_logger.empty()) {
    // The logger lives as long as QEMU holds the pipe's other end: it ends
    // with the VM, kept or not, and is nobody's child to reap.
    console = make_pipe();
    SpawnOptions logger;
    logger.argv = {c.console_logger.string(), "console-log", std::to_string(c.console_log_max),
                   c.paths.console_log().string()};
    logger.stdin_fd = console.read.get();
    logger.stdout_fd = log.get();
    logger.stderr_fd = log.get();
    logger.detached = true;
    logger.blocked_signals = kJobSignals;  // as QEMU: it ends when QEMU does
    Child::spawn(logger);
    console.read.reset();
    o.extra_fds.emplace_back(console.write.get(), kConsolePipeFd);
  }
  o.die_with_parent = extras.die_with_parent;
  // A root QEMU would carry out a guest's mknod of a device node or chown to
  // another user in a read-write 9p share (docs/isolation.md).
  o.drop_capabilities = {CAP_MKNOD, CAP_CHOWN};
  o.blocked_signals = kJobSignals;
  Child child = Child::spawn(o);
  write_file_atomic(c.paths.pid_file(), std::to_string(child.pid()) + "\n");
  return child;
}

void settle_console_log(const VmPaths& paths, Deadline deadline) {
  LockFile::lock_existing(paths.console_log(), deadline, LockFile::Mode::kShared);  // and let go at once
}

std::string tail_lines(const fs::path& file, size_t max_lines) {
  auto text = read_file_if_exists(file);
  if (!text) return "";
  std::string_view s = *text;
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r')) s.remove_suffix(1);
  size_t pos = s.size();
  for (size_t lines = 0; lines < max_lines && pos > 0; ++lines) {
    size_t nl = s.rfind('\n', pos - 1);
    pos = nl == std::string_view::npos ? 0 : nl;
    if (nl == std::string_view::npos) break;
  }
  std::string_view out = s.substr(pos);
  if (!out.empty() && out.front() == '\n') out.remove_prefix(1);
  return std::string(out);
}

}  // namespace kestrel::vm
