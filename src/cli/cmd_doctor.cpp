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
#include "assets/kernel_config.hpp"
#include "assets/modules.hpp"
#include "cli/commands.hpp"
#include "cli/parse.hpp"
#include "config/config.hpp"
#include "deploy/deployment.hpp"
#include "deploy/registry.hpp"
#include "deploy/slots.hpp"
#include "host/run_options.hpp"
#include "host/template_store.hpp"
#include "image/host_check.hpp"
#include "util/error.hpp"
#include "util/fs.hpp"
#include "util/strings.hpp"
#include "vm/accel.hpp"
#include "vm/qemu.hpp"

namespace kestrel::cli {

namespace {

const char* kDoctorHelp = R"(Check that this host can run kestrel's VMs: QEMU, the guest agent and busybox,
the guest kernel cache, the host's KVM facts (the CPU, the KVM modules, /dev/kvm)
and the accelerator they give (KVM or TCG, and why), free disk,
permissions of the runtime and cache directories, warm-start templates, the
slot limit, the time to live of kept VMs, what image builds need (mmdebstrap;
unprivileged: uidmap, subordinate ids, fakeroot), and the configuration: every file
and KESTREL_* variable whose value is invalid is reported. Each problem is
printed with the command that fixes it.

With --kernel, checks only that kernel, without booting it: that kestrel can
read and boot the image (PVH or bzImage), where its configuration comes from
(config-RELEASE beside it, CONFIG_IKCONFIG, a build tree's .config, else its
modules), each feature kestrel needs (9p, the virtio console, overlay, ...;
disks for images, virtio-net for topologies) with the options that give it,
and how kestrel adapts its flags to it (docs/guest.md, "Kernels of your own").

Exit status: 0 when nothing is wrong (warnings allowed), 1 otherwise.
)";

enum class Verdict { kOk, kWarn, kFail };

struct Finding {
  Verdict verdict = Verdict::kOk;
  std::string detail;
  std::string fix;  // a command, or what to do; empty when nothing is needed
};

using Findings = std::vector<std::pair<const char*, Finding>>;

struct Check {
  const char* name;
  std::function<Finding(const config::Config*)> run;
  // Instead of run: a check that reports several lines (the kernel's).
  std::function<void(const config::Config*, Findings&)> run_many = nullptr;
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
    auto accels = vm::qemu_accelerators(qemu);
    return ok(fmt::format("QEMU {} ({}; accelerators: {})", vm::qemu_version(qemu), qemu,
                          accels.empty() ? std::string("none") : join(accels, " ")));
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

std::string image_kind(const assets::Kernel& k, const assets::KernelSpec& spec) {
  std::string kind;
  if (spec.image.empty())
    kind = k.pvh ? "cached, booted through its PVH entry" : "cached, a bzImage without a PVH entry (boots slower)";
  else if (k.image != fs::absolute(spec.image).lexically_normal())
    kind = "a bzImage, booted as its vmlinux through the PVH entry (extracted to " + k.image.string() + ")";
  else
    kind = k.pvh ? "an ELF vmlinux with a PVH entry" : "a bzImage without a PVH entry (QEMU boots it the slower way)";
  std::string modules = k.modules_dir.empty() ? "no modules directory" : "modules in " + k.modules_dir.string();
  return kind + "; " + modules;
}

// Where a kernel's configuration could come from.
std::string config_fix(const assets::KernelSpec& spec) {
  if (spec.image.empty()) return "kestrel kernel fetch --force  (a fresh fetch keeps the package's config)";
  return "put the kernel's .config beside it as config-RELEASE (as /boot has it), or build it with CONFIG_IKCONFIG=y";
}

// The kernel a run would boot (or the one --kernel names): whether kestrel
// can boot it and whether it has what kestrel needs. `detailed`: a line per
// feature; else the features that are fine share the config line.
void check_kernel(const assets::KernelSpec& spec, bool detailed, Findings& out) {
  assets::Kernel k;
  try {
    k = assets::resolve_kernel(spec);
  } catch (const Error& e) {
    out.emplace_back("kernel", problem(e.what(), spec.image.empty() ? "kestrel kernel fetch"
                                                                    : "pass a bzImage (e.g. /boot/vmlinuz-RELEASE, "
                                                                      "arch/x86/boot/bzImage) or a vmlinux with a "
                                                                      "PVH entry (CONFIG_PVH=y)"));
    return;
  }
  out.emplace_back("kernel",
                   ok(fmt::format("{} ({}): {}", k.release, spec.image.empty() ? k.image.string() : spec.image.string(),
                                  image_kind(k, spec))));

  assets::KernelConfig config = assets::find_kernel_config(k, spec.image, /*thorough=*/true);
  assets::ModuleTree tree(k.modules_dir);
  std::vector<assets::FeatureState> features = assets::check_features(config, k, &tree);
  std::vector<std::string> fine;
  Findings feature_lines;
  for (const assets::FeatureState& f : features) {
    bool optional = f.feature->need != assets::Need::kBoot;
    std::string who = f.feature->need == assets::Need::kDisk      ? "only images need it"
                      : f.feature->need == assets::Need::kNetwork ? "only topologies need it"
                                                                  : "";
    std::string line = fmt::format("{}: {}", f.feature->what, f.detail);
    switch (f.verdict) {
      case assets::FeatureState::Verdict::kOk:
        fine.push_back(f.feature->check);
        if (detailed) feature_lines.emplace_back(f.feature->check, ok(line));
        break;
      case assets::FeatureState::Verdict::kMissing:
        if (optional)
          feature_lines.emplace_back(f.feature->check, warn(line + " (" + who + ")", assets::feature_fix(f, k)));
        else
          feature_lines.emplace_back(f.feature->check, problem(line, assets::feature_fix(f, k)));
        break;
      case assets::FeatureState::Verdict::kUnknown:
        if (detailed) feature_lines.emplace_back(f.feature->check, warn(line, config_fix(spec)));
        break;
    }
  }

  std::string have = fine.empty() ? "" : fmt::format("; has {}", fmt::join(fine, ", "));
  switch (config.source) {
    case assets::ConfigSource::kFile:
    case assets::ConfigSource::kEmbedded:
      out.emplace_back("kconfig", ok(config.where + (detailed ? "" : have)));
      break;
    case assets::ConfigSource::kModules:
      out.emplace_back("kconfig", warn(fmt::format("no configuration found; guessed from {} (module options only){}",
                                                   config.where, detailed ? "" : have),
                                       config_fix(spec)));
      break;
    case assets::ConfigSource::kNone:
      out.emplace_back("kconfig", warn("no configuration found (no config-RELEASE beside it, no CONFIG_IKCONFIG, "
                                       "no modules directory): kestrel cannot check it before it boots",
                                       config_fix(spec)));
      break;
  }
  out.insert(out.end(), feature_lines.begin(), feature_lines.end());

  char mpparse = config.state("X86_MPPARSE");
  if (mpparse == 'n')
    out.emplace_back("apic", ok("CONFIG_X86_MPPARSE is not set: kestrel boots it without pci=noacpi (which would "
                                "disable its local APIC: one CPU whatever --cpus says)"));
  else if (detailed && mpparse == '?')
    out.emplace_back("apic", warn("cannot tell whether it has CONFIG_X86_MPPARSE: kestrel boots it with pci=noacpi, "
                                  "which gives a kernel without it one CPU",
                                  config_fix(spec)));
  else if (detailed)
    out.emplace_back("apic", ok("CONFIG_X86_MPPARSE=y: kestrel boots it with pci=noacpi (PCI interrupts routed by "
                                "the BIOS table, faster under TCG)"));
}

Finding check_accel(const config::Config* c) {
  vm::HostFacts facts = vm::read_host_facts();
  std::string requested = c ? c->text("accel") : "auto";
  vm::AccelDecision d;
  try {
    d = vm::decide_accel(requested, facts);
    if (d.accel == vm::Accel::kKvm) {  // as a run does: ask QEMU too
      try {
        facts.qemu_accels = vm::qemu_accelerators(vm::find_qemu());
      } catch (const Error&) {
        // No QEMU: the qemu line says so.
      }
      d = vm::decide_accel(requested, facts);
    }
  } catch (const Error& e) {
    return problem(e.what(), facts.dev_kvm == vm::HostFacts::DevKvm::kNoAccess
                                 ? "sudo usermod -aG kvm $USER  (then log in again), or set accel = \"auto\""
                                 : "set accel = \"auto\" (TCG where KVM cannot boot)");
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
  std::string reason = d.reason;
  if (facts.pvm_only()) reason += ". TCG boots and runs every guest, only slower.";
  return warn(reason, vm::kvm_advice(facts));
}

// The facts the accelerator was chosen from, for whoever reads a report.
Finding check_host(const config::Config*) { return ok(vm::describe_host(vm::read_host_facts())); }

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
  fs::path dir;
  try {
    dir = host::templates_dir();
  } catch (const Error& e) {
    return problem(e.what(), "export KESTREL_TEMPLATE_DIR=/var/tmp/kestrel-templates-$USER");
  }
  auto templates = host::list_templates();
  for (const auto& t : templates) bytes += t.disk_bytes;
  return ok(
      fmt::format("warm starts on: {} template(s) in {}{}, {} on disk (`kestrel cache ls`); the first run "
                  "of a configuration builds its own",
                  templates.size(), dir.string(), std::getenv("KESTREL_TEMPLATE_DIR") ? " (KESTREL_TEMPLATE_DIR)" : "",
                  human_bytes(bytes)));
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

void check_configured_kernel(const config::Config* c, Findings& out) {
  check_kernel(host::kernel_spec(c ? c->text("kernel") : "", c ? c->text("kernel_modules") : ""), /*detailed=*/false,
               out);
}

struct Counts {
  int problems = 0;
  int warnings = 0;
};

Counts print_findings(const Findings& findings) {
  Counts n;
  for (const auto& [name, f] : findings) {
    const char* mark = f.verdict == Verdict::kOk ? "ok" : f.verdict == Verdict::kWarn ? "warn" : "FAIL";
    std::printf("%-5s %-8s %s\n", mark, name, f.detail.c_str());
    if (!f.fix.empty()) std::printf("%-14s fix: %s\n", "", f.fix.c_str());
    n.problems += f.verdict == Verdict::kFail;
    n.warnings += f.verdict == Verdict::kWarn;
  }
  return n;
}

}  // namespace

int cmd_doctor(const Args& args) {
  CLI::App app(kDoctorHelp, "kestrel doctor");
  std::string kernel, kernel_modules;
  app.add_option("--kernel", kernel,
                 "check only this kernel, without booting it: a path to a bzImage or vmlinux, a cached release, or "
                 "`lean` (the lean kernel)");
  app.add_option("--kernel-modules", kernel_modules, "the directory of its modules (with --kernel)");
  if (!parse(app, args)) return 0;

  if (!kernel.empty() || !kernel_modules.empty()) {
    Findings findings;
    check_kernel(host::kernel_spec(kernel, kernel_modules), /*detailed=*/true, findings);
    Counts n = print_findings(findings);
    if (n.problems)
      std::printf("\n%d problem(s), %d warning(s): kestrel cannot run VMs with this kernel until they are fixed.\n",
                  n.problems, n.warnings);
    else
      std::printf("\nthis kernel can run kestrel's VMs: %d warning(s).\n", n.warnings);
    return n.problems ? 1 : 0;
  }

  // Every bad setting is reported, not only the first: the others are
  // skipped and the checks below see what a run would get without them.
  std::optional<config::Config> config;
  Findings findings;
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
      {"qemu", check_qemu},       {"guest", check_guest_files}, {"kernel", nullptr, check_configured_kernel},
      {"host", check_host},       {"accel", check_accel},       {"runtime", check_runtime_dir},
      {"cache", check_cache_dir}, {"warm", check_warm},         {"slots", check_slots},
      {"ttl", check_keep_ttl},    {"images", check_images},
  };
  for (const Check& check : checks) {
    try {
      if (check.run_many)
        check.run_many(c, findings);
      else
        findings.emplace_back(check.name, check.run(c));
    } catch (const Error& e) {
      findings.emplace_back(check.name, problem(e.what(), ""));
    }
  }

  Counts n = print_findings(findings);
  if (n.problems)
    std::printf("\n%d problem(s), %d warning(s): kestrel run will not work until the problems are fixed.\n", n.problems,
                n.warnings);
  else
    std::printf("\nready: %d warning(s).\n", n.warnings);
  return n.problems ? 1 : 0;
}

}  // namespace kestrel::cli
