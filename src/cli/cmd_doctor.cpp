// kestrel doctor: is this host ready to run VMs, and if not, what fixes it.
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <functional>

#include "assets/cache.hpp"
#include "assets/initramfs.hpp"
#include "assets/kernel.hpp"
#include "cli/commands.hpp"
#include "cli/parse.hpp"
#include "config/config.hpp"
#include "deploy/deployment.hpp"
#include "deploy/registry.hpp"
#include "deploy/slots.hpp"
#include "host/template_store.hpp"
#include "image/host_check.hpp"
#include "util/error.hpp"
#include "util/fs.hpp"
#include "vm/accel.hpp"
#include "vm/qemu.hpp"

namespace kestrel::cli {

namespace {

const char* kDoctorHelp = R"(Check that this host can run kestrel's VMs: QEMU, the guest agent and busybox,
the guest kernel cache, the accelerator (KVM or TCG, and why), free disk,
permissions of the runtime and cache directories, warm-start templates, the
slot limit, the time to live of kept VMs, what image builds need (mmdebstrap;
unprivileged: uidmap, subordinate ids, fakeroot), and the configuration: every file
and KESTREL_* variable whose value is invalid is reported. Each problem is
printed with the command that fixes it.

Exit status: 0 when nothing is wrong (warnings allowed), 1 otherwise.
)";

enum class Verdict { kOk, kWarn, kFail };

struct Finding {
  Verdict verdict = Verdict::kOk;
  std::string detail;
  std::string fix;  // a command, or what to do; empty when nothing is needed
};

struct Check {
  const char* name;
  std::function<Finding(const config::Config*)> run;
};

Finding ok(std::string detail) { return {Verdict::kOk, std::move(detail), ""}; }
Finding warn(std::string detail, std::string fix) { return {Verdict::kWarn, std::move(detail), std::move(fix)}; }
Finding problem(std::string detail, std::string fix) { return {Verdict::kFail, std::move(detail), std::move(fix)}; }

std::string human_bytes(uint64_t bytes) {
  if (bytes >= (1ull << 30)) return fmt::format("{:.1f} GiB", static_cast<double>(bytes) / (1ull << 30));
  return fmt::format("{} MiB", bytes >> 20);
}

Finding check_qemu(const config::Config*) {
  try {
    std::string qemu = vm::find_qemu();
    return ok(fmt::format("QEMU {} ({})", vm::qemu_version(qemu), qemu));
  } catch (const Error& e) {
    if (const char* env = std::getenv("KESTREL_QEMU"); env && *env)
      return problem(fmt::format("KESTREL_QEMU={}: {}", env, e.what()),
                     "unset KESTREL_QEMU (or point it at a QEMU binary)");
    return problem(e.what(), "sudo apt-get install qemu-system-x86");
  }
}

Finding check_guest_files(const config::Config*) {
  std::string agent;
  try {
    agent = assets::find_agent().string();
  } catch (const Error& e) {
    return problem(e.what(),
                   "reinstall kestrel (sudo apt-get install --reinstall kestrel), or `./dev build` in its source tree");
  }
  try {
    return ok(fmt::format("agent {}, busybox {}", agent, assets::find_busybox().string()));
  } catch (const Error& e) {
    return problem(e.what(), "sudo apt-get install busybox-static");
  }
}

Finding check_kernel(const config::Config* c) {
  assets::KernelSpec spec;
  std::string kernel = c ? c->text("kernel") : "";
  if (kernel.find('/') != std::string::npos) {
    spec.image = kernel;
    spec.modules_dir = c->text("kernel_modules");
  } else {
    spec.release = kernel;
  }
  try {
    assets::Kernel k = assets::resolve_kernel(spec);
    return ok(fmt::format("{} ({})", k.release, k.image.string()));
  } catch (const Error& e) {
    return problem(e.what(), "kestrel kernel fetch");
  }
}

bool cpu_has_virtualization() {
  auto text = read_file_if_exists("/proc/cpuinfo");
  return text && (text->find(" vmx") != std::string::npos || text->find(" svm") != std::string::npos);
}

Finding check_accel(const config::Config* c) {
  vm::HostFacts facts = vm::probe_host("");
  std::string requested = c ? c->text("accel") : "auto";
  vm::AccelDecision d;
  try {
    d = vm::decide_accel(requested, facts);
  } catch (const Error& e) {
    return problem(e.what(), "sudo usermod -aG kvm $USER  (then log in again), or set accel = \"auto\"");
  }
  auto failures = vm::remembered_kvm_failures();
  if (d.accel == vm::Accel::kKvm) {
    if (!failures.empty())
      return warn(d.reason + "; but KVM failed to boot here before: " + failures.front() +
                      " (runs fall back to TCG for that host/QEMU/kernel)",
                  "rm " + vm::kvm_verdict_file().string() + "  (to try KVM again)");
    return ok(d.reason);
  }
  if (!d.automatic) return ok(d.reason + " (chosen by configuration)");
  if (facts.kvm_pvm && !facts.kvm_intel && !facts.kvm_amd)
    return warn(d.reason + ". TCG boots and runs every guest, only slower.",
                "none on this host: KVM needs a host with kvm_intel or kvm_amd (bare metal or nested "
                "virtualization); set accel = \"tcg\" to make the choice explicit");
  if (facts.kvm_intel || facts.kvm_amd)  // modules there, /dev/kvm not usable by us
    return warn(d.reason, "sudo usermod -aG kvm $USER  (then log in again)");
  if (cpu_has_virtualization()) return warn(d.reason, "sudo modprobe kvm_intel  (or kvm_amd on AMD CPUs)");
  return warn(d.reason + "; this CPU offers no hardware virtualization to this host",
              "none on this host: use a machine (or VM with nested virtualization) with VT-x/AMD-V");
}

Finding check_dir(const char* what, const fs::path& dir, const std::string& space_fix) {
  if (::access(dir.c_str(), R_OK | W_OK | X_OK) != 0)
    return problem(fmt::format("{} {} is not writable by you", what, dir.string()),
                   fmt::format("sudo chown -R $USER {}", dir.string()));
  struct statvfs vfs;
  if (::statvfs(dir.c_str(), &vfs) != 0) return problem(fmt::format("cannot statvfs {}", dir.string()), "");
  uint64_t free_bytes = static_cast<uint64_t>(vfs.f_bavail) * vfs.f_frsize;
  std::string detail = fmt::format("{} {}: {} free", what, dir.string(), human_bytes(free_bytes));
  if (free_bytes < (512ull << 20)) return problem(detail + " (less than 512 MiB)", space_fix);
  if (free_bytes < (2ull << 30)) return warn(detail + " (less than 2 GiB)", space_fix);
  return ok(detail);
}

Finding check_runtime_dir(const config::Config*) {
  fs::path dir;
  try {
    dir = deploy::runtime_dir();
  } catch (const Error& e) {
    return problem(e.what(), "export KESTREL_RUNTIME_DIR=/tmp/kestrel-$USER");
  }
  struct stat st;
  if (::stat(dir.c_str(), &st) == 0 && (st.st_mode & 077) != 0)
    return warn(fmt::format("runtime dir {} is readable by others (mode {:o}): its sockets give root in your VMs",
                            dir.string(), st.st_mode & 0777),
                "chmod 700 " + dir.string());
  return check_dir("runtime dir", dir, "kestrel gc --all  (removes kept VMs and their files)");
}

Finding check_cache_dir(const config::Config*) {
  try {
    return check_dir("cache dir", assets::cache_dir(),
                     "kestrel cache clear  (templates and initramfs images are rebuilt when needed)");
  } catch (const Error& e) {
    return problem(e.what(), "export KESTREL_CACHE_DIR=$HOME/.cache/kestrel");
  }
}

Finding check_warm(const config::Config* c) {
  if (c && !c->flag("warm"))
    return ok(fmt::format("warm starts off ({}): every run boots", config::describe_origin(c->entry("warm").origin)));
  uint64_t bytes = 0;
  auto templates = host::list_templates();
  for (const auto& t : templates) bytes += t.disk_bytes;
  return ok(
      fmt::format("warm starts on: {} template(s) in the cache, {} on disk (`kestrel cache ls`); the first run "
                  "of a configuration builds its own",
                  templates.size(), human_bytes(bytes)));
}

Finding check_slots(const config::Config* c) {
  int64_t memory = c ? c->count("memory") : 512;
  int64_t slots = c ? c->count("slots") : 0;
  std::string why = c && slots > 0 ? config::describe_origin(c->entry("slots").origin) : "automatic: CPUs and memory";
  if (slots == 0) slots = deploy::default_slot_count(static_cast<uint32_t>(memory));
  std::string detail = fmt::format("{} VM(s) of {} MiB at once ({})", slots, memory, why);
  size_t kept = 0;
  for (const auto& d : deploy::list_deployments())
    if (d.liveness == deploy::Liveness::kKept) ++kept;
  if (kept > 0)
    return warn(detail + fmt::format("; {} kept VM(s) still use memory", kept),
                "kestrel ls, then kestrel destroy NAME... (or kestrel gc --all)");
  return ok(detail);
}

Finding check_keep_ttl(const config::Config*) {
  const char* env = std::getenv(config::kKeepTtlVariable);
  std::string fix =
      fmt::format("export {}=2h  (seconds, or a number with s, m, h or d), or unset it", config::kKeepTtlVariable);
  try {
    int64_t ttl = deploy::default_keep_ttl();
    std::string origin = env && *env ? fmt::format("environment {}", config::kKeepTtlVariable) : "default";
    return ok(fmt::format("kept VMs live {} s ({:.1f} h) before any kestrel command removes them ({})", ttl,
                          static_cast<double>(ttl) / 3600, origin));
  } catch (const Error& e) {
    return problem(fmt::format("{}; kept VMs do not expire until it is fixed", e.what()), fix);
  }
}

// Images are optional: what they lack is a warning.
Finding check_images(const config::Config*) {
  image::ToolsCheck t = image::check_build_tools();
  return t.ok ? ok("image builds: " + t.detail) : warn(t.detail, t.fix);
}

Finding check_config(const config::Config* c) {
  std::string project = c->project_file() ? c->project_file()->string() : "none";
  std::string user = c->user_file() && c->user_file_exists() ? c->user_file()->string() : "none";
  return ok(fmt::format("project file {}, user file {}", project, user));
}

}  // namespace

int cmd_doctor(const Args& args) {
  CLI::App app(kDoctorHelp, "kestrel doctor");
  if (!parse(app, args)) return 0;

  // Every bad setting is reported, not only the first: the others are
  // skipped and the checks below see what a run would get without them.
  std::optional<config::Config> config;
  std::vector<std::pair<const char*, Finding>> findings;
  try {
    std::vector<std::string> bad;
    config = config::Config::load_lenient(bad);
    for (const std::string& message : bad)
      findings.emplace_back("config", problem(message, message.rfind("KESTREL_", 0) == 0
                                                           ? "fix or unset the variable (kestrel config --keys "
                                                             "lists the keys and what they accept)"
                                                           : "fix the file at the line named (kestrel config "
                                                             "--keys lists the keys)"));
    if (bad.empty()) findings.emplace_back("config", check_config(&*config));
  } catch (const Error& e) {
    findings.emplace_back("config", problem(e.what(), ""));
  }
  const config::Config* c = config ? &*config : nullptr;
  const std::vector<Check> checks = {
      {"qemu", check_qemu},           {"guest", check_guest_files}, {"kernel", check_kernel}, {"accel", check_accel},
      {"runtime", check_runtime_dir}, {"cache", check_cache_dir},   {"warm", check_warm},     {"slots", check_slots},
      {"ttl", check_keep_ttl},        {"images", check_images},
  };
  for (const Check& check : checks) {
    try {
      findings.emplace_back(check.name, check.run(c));
    } catch (const Error& e) {
      findings.emplace_back(check.name, problem(e.what(), ""));
    }
  }

  int problems = 0, warnings = 0;
  for (const auto& [name, f] : findings) {
    const char* mark = f.verdict == Verdict::kOk ? "ok" : f.verdict == Verdict::kWarn ? "warn" : "FAIL";
    std::printf("%-5s %-8s %s\n", mark, name, f.detail.c_str());
    if (!f.fix.empty()) std::printf("%-14s fix: %s\n", "", f.fix.c_str());
    problems += f.verdict == Verdict::kFail;
    warnings += f.verdict == Verdict::kWarn;
  }
  if (problems)
    std::printf("\n%d problem(s), %d warning(s): kestrel run will not work until the problems are fixed.\n", problems,
                warnings);
  else
    std::printf("\nready: %d warning(s).\n", warnings);
  return problems ? 1 : 0;
}

}  // namespace kestrel::cli
