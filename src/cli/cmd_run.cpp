// kestrel run [OPTIONS] [--] PROGRAM [ARGS...]
#include <optional>

#include "cli/commands.hpp"
#include "cli/config_options.hpp"
#include "cli/host_listing.hpp"
#include "cli/parse.hpp"
#include "cli/run_program.hpp"
#include "config/config.hpp"
#include "deploy/deployment.hpp"
#include "deploy/naming.hpp"
#include "deploy/slots.hpp"
#include "deploy/teardown.hpp"
#include "host/environment.hpp"
#include "host/machine.hpp"
#include "host/run_options.hpp"
#include "host/shares.hpp"
#include "host/vm_exit.hpp"
#include "host/write_through.hpp"
#include "image/build.hpp"
#include "proto/frame.hpp"
#include "topology/spec.hpp"
#include "util/allocation.hpp"
#include "util/error.hpp"
#include "util/fs.hpp"
#include "util/lockfile.hpp"
#include "util/signals.hpp"
#include "util/socket.hpp"
#include "util/strings.hpp"
#include "util/trace.hpp"

extern char** environ;

namespace kestrel::cli {

using namespace std::chrono_literals;

namespace {

void fill_from_config(RunOptions& o, const config::Config& c) {
  o.vm = host::boot_options(c);
  o.timeout_s = c.seconds("timeout");
  o.keep = c.text("keep");
  o.slots = static_cast<int>(c.count("slots"));
  o.list_on_host = c.flag("list_on_host");
  o.image = c.text("image");
  o.env.pass = c.list("env.pass");
  o.env.deny = c.list("env.deny");
  for (const auto& t : c.list("write_through"))
    if (t != "none") o.write_through.push_back(t);
  o.write_through_origin = describe_origin(c.entry("write_through").origin);
  for (const auto& s : c.list("share")) {
    o.shares.push_back(config::parse_share(s));
    if (!fs::is_directory(o.shares.back().path))
      fail("cannot share {} with the VM ({}): not a directory", o.shares.back().path,
           describe_origin(c.entry("share").origin));
  }
}

const char* kRunHelp = R"(Run PROGRAM with ARGS in a fresh VM and return its exit status:
  kestrel run [OPTIONS] [--] PROGRAM [ARGS...]

PROGRAM runs at its own path ($0 and /proc/self/exe as on the host): the
host's root file system is the VM's root, read-only with a throw-away
writable layer on top. What the program writes reaches the host only in its
write-through trees (docs/isolation.md): its project (the nearest ancestor
of the working directory holding .git or kestrel.toml; without one, the
working directory) and the build tree it was built in (a CMake build tree,
cargo's target directory, go's work directory), never a system directory or
your home directory itself, plus directories shared with --share PATH:rw.
Files it makes there belong to you. Everything else it writes (its own file
included, outside the trees) vanishes with the VM. --verbose shows the trees;
--write-through none turns them off, --write-through PATH names them.
With --image RECIPE|NAME (or `image =` in kestrel.toml) the VM's root is an
image instead (docs/images.md): a Debian system built once from a recipe
(images/pg.toml; the first run builds it, showing its stages), through a
copy-on-write disk of this VM's own, with the recipe's services already
running. The write-through trees and shares are mounted as above; a program
named without a directory, or in /usr, /bin, /sbin or /lib*, is the image's.
The program runs as root in the guest with the host's working directory and environment,
except: HOSTNAME DISPLAY WAYLAND_DISPLAY XAUTHORITY XDG_RUNTIME_DIR
XDG_SESSION_ID DBUS_SESSION_BUS_ADDRESS SSH_AUTH_SOCK SSH_AGENT_PID
SSH_CONNECTION SSH_CLIENT SSH_TTY GPG_AGENT_INFO LISTEN_FDS LISTEN_PID
LISTEN_FDNAMES NOTIFY_SOCKET INVOCATION_ID JOURNAL_STREAM.
The program also gets KESTREL_VM=NAME, the VM's name (its hostname too).
Standard input is forwarded unless it is a terminal.

The VM is a clone of a template of its configuration (kernel, memory, CPUs,
...), restored in a fraction of a boot; the first run of a configuration
builds the template (`kestrel cache ls` lists them). --cold boots instead.

Test listing runs on the host: when the program's arguments contain --list
(cargo test, nextest), --gtest_list_tests (GoogleTest, CTest's
gtest_discover_tests) or -test.list (go test), kestrel runs it directly on the
host, without a VM, since listing tests needs none. --list-in-vm (or
list_on_host = false) turns that off.

Test runners call kestrel run themselves: `kestrel cargo test` (or
CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_RUNNER="kestrel run --" cargo test),
`kestrel cargo nextest run`, `kestrel go test ./...` (or go test -exec
"kestrel run --"), and CTest configured with
-DCMAKE_CROSSCOMPILING_EMULATOR="kestrel;run;--" (CMake 3.29+:
-DCMAKE_TEST_LAUNCHER="kestrel;run;--", or find_package(Kestrel)).

Defaults for the options below come from kestrel.toml (found in the current
directory or a parent), $XDG_CONFIG_HOME/kestrel/config.toml and KESTREL_*
variables; `kestrel config` shows what is in effect and why.

At start kestrel prints to stderr:
  kestrel: VM NAME, deployment dir DIR
When the program fails and the VM is kept (the default), it prints:
  kestrel: test failed (exit status N); VM NAME remains running, deployment dir DIR
followed by the commands to open its console, run a command in it and destroy it,
and the path of a copy of the program as it ran (DIR/program/NAME), for
debugging after the host rebuilt it.

Signals: SIGINT, SIGTERM and SIGHUP are forwarded to the program. If it has
not finished 2 s later (or at once on a second signal), kestrel stops waiting.
Either way an interrupted run says so, tears its VM down (never kept) and
exits 128+N: 130 after SIGINT, 143 after SIGTERM.

--timeout S: after S seconds the program is killed in the guest; kestrel
prints "kestrel: error: PROGRAM ran past --timeout S s and was killed" and
exits 124; the VM is kept per --keep.

When the VM fails (QEMU killed or crashing, the guest kernel panicking, the
agent lost, no boot within the deadline: 60 s under TCG, 10 s under KVM),
kestrel says what happened, shows the last console lines, names the console
log, and exits 125. A dead VM's deployment dir stays for its logs until
`kestrel gc` (or the time to live, see `kestrel gc --help`) removes it.

At most N VMs run at once for this user on this host (KESTREL_SLOTS, default:
one per CPU, fewer if memory is short); further runs wait their turn and
say so once. A kept VM does not hold a slot.

Exit status: the program's, or 128+N if it died of signal N; 124 after
--timeout; 125 if kestrel failed (the VM did not boot, died, ...); 126 if
PROGRAM cannot be executed (a directory, not a regular file, no execute
permission: checked on the host before any VM starts); 127 if it is not
found; 2 for a bad command line (an unknown option before PROGRAM: put
`--` before a program whose name starts with '-').

Environment: KESTREL_ACCEL=kvm|tcg|auto (default auto: KVM only where it can
boot, else TCG), KESTREL_SLOTS, KESTREL_ENV_PASS, KESTREL_ENV_DENY (see
`kestrel config --keys`), KESTREL_RUNTIME_DIR, KESTREL_CACHE_DIR, KESTREL_QEMU,
KESTREL_TRACE=1 (phase timings on stderr).
)";

fs::path cwd_or_empty() {
  std::error_code ec;
  fs::path cwd = fs::current_path(ec);
  return ec ? fs::path() : cwd;
}

// A kept VM, failed (status) or kept by --keep always (no status): where it
// is, the copy of its program, and the ready-to-paste commands to get in and
// to remove it.
void print_kept_message(const std::string& name, const fs::path& dir, std::optional<int> status,
                        const std::optional<fs::path>& copy) {
  std::string self = self_command();
  std::string d = shell_quote(dir.string());
  if (status)
    say(fmt::format("test failed (exit status {}); VM {} remains running, deployment dir {}", *status, name,
                    dir.string()));
  else
    say(fmt::format("VM {} remains running (--keep always), deployment dir {}", name, dir.string()));
  say(fmt::format("  console:  {} serial {} -f {}", self, name, d));
  say(fmt::format("  command:  {} exec {} 'CMD' -f {}", self, name, d));
  say(fmt::format("  destroy:  {} destroy -f {}", self, d));
  if (copy) say(fmt::format("  program:  {} (a copy of the program as it ran)", copy->string()));
  if (Allocation a = current_allocation(); !a.job.empty()) {
    // On a cluster: from a login node, into the job's allocation.
    say(fmt::format("  from a login node:  srun --jobid {} --overlap{} {} exec {} 'CMD' -f {}", a.job,
                    a.node.empty() ? "" : " -w " + a.node, self, name, d));
    say("  the VM lives as long as the job: end a batch script with `kestrel hold` to keep the job while it runs");
  }
}

}  // namespace

static int run_in_vm(const RunOptions& o, const std::string& name, deploy::Deployment& dep, const fs::path& program,
                     bool image_program, const host::SharePlan& shares, const std::optional<image::ImageInfo>& image,
                     SignalFd& signals, deploy::Slot& slot, deploy::RunGuard& guard);

int cmd_run(const Args& args) {
  RunOptions o;
  CLI::App app(kRunHelp, "kestrel run");
  ConfigOptions config_options(app);
  app.add_option("--name", o.name, "VM name stem (default: the program's name); a random suffix is added");
  app.add_flag("-q,--quiet", o.quiet, "do not print the VM name and deployment dir at start");
  app.add_flag("-v,--verbose", o.verbose, "say at start where the program's writes reach the host (and why)");
  app.add_flag("--debug", o.debug, "verbose guest kernel and agent output on the console log");
  app.add_option("--topology", o.topology, "bring up this topology file and run PROGRAM on --node NODE of it");
  app.add_option("--node", o.node, "the topology's node to run PROGRAM on (with --topology)");
  // PROGRAM and everything after it (or after "--") is the command, untouched.
  app.prefix_command();
  if (!parse(app, args)) return 0;
  o.command = app.remaining();
  if (!o.command.empty() && o.command.front() == "--") {
    o.command.erase(o.command.begin());
  } else if (!o.command.empty() && o.command.front().size() > 1 && o.command.front()[0] == '-') {
    // CLI11 hands an unknown option over as the program: a typo'd option is
    // a usage error, not a program named "--bogus".
    throw CLI::ExtrasError(
        "unknown option " + o.command.front() + " (a program whose name starts with '-' goes after --)",
        CLI::ExitCodes::ExtrasError);
  }
  if (o.command.empty()) throw CLI::RequiredError("PROGRAM");
  if (o.topology.empty() != o.node.empty()) throw CLI::ValidationError("--topology FILE and --node NODE go together");
  config::Config config = load_config(config_options);
  fill_from_config(o, config);
  trace("configured");
  std::optional<topology::Spec> spec;
  if (!o.topology.empty()) {
    spec = topology::load_spec(o.topology);
    o.image = node_spec(*spec, o.node).image;  // the node's root, whatever the configuration says
  }

  // On an image, a program named without a directory, or in the system
  // directories, is the image's: the guest finds it (docs/images.md).
  const bool image_program = !o.image.empty() && host::is_image_program(o.command[0]);
  fs::path program;
  try {
    program = image_program ? fs::path(o.command[0]) : resolve_program(o.command[0]);
  } catch (const ProgramError& e) {
    say(std::string("error: ") + e.what());
    return e.status();
  }
  host::WritePlan writes =
      host::plan_write_through({o.write_through, o.write_through_origin, cwd_or_empty(), program, host::user_home()});
  std::vector<fs::path> trees;
  for (const auto& t : writes.trees) trees.push_back(t.path);
  host::SharePlan shares = host::plan_shares(o.shares, program, trees, o.image.empty());
  if (o.list_on_host && !image_program && is_listing_invocation({o.command.begin() + 1, o.command.end()}))
    exec_on_host(program, o.command);
  std::string name = deploy::make_vm_name(o.name.empty() ? program.filename().string() : o.name);

  // Signals arrive on a descriptor from here on; they are forwarded to the
  // program once it runs.
  SignalFd signals({SIGINT, SIGTERM, SIGHUP, SIGWINCH});
  if (spec) return run_on_topology(o, *spec, program, image_program, trees, signals);

  // The image, built first if its recipe's is not (docs/images.md).
  std::optional<image::ImageInfo> image;
  if (!o.image.empty()) {
    image::BuildOptions build;
    build.vm = host::boot_options(config);
    build.vm.signal_fd = signals.fd();
    build.say = [](const std::string& line) { say(line); };
    build.vm.notice = build.say;
    try {
      image = image::resolve_image(o.image, build);
    } catch (const Interrupted& e) {
      say(fmt::format("interrupted by signal {} while building image {}", e.signo(), o.image));
      return 128 + e.signo();
    }
    trace("image ready");
  }

  // Declared before the deployment's guard, so the slot is given back only
  // after the VM is torn down: a dying VM still counts against the limit.
  deploy::Slot slot;
  deploy::Deployment dep = deploy::Deployment::create(name);
  dep.state().keep = o.keep;
  dep.state().command = o.command;
  // What `kestrel exec` needs to run a command as the program ran: the same
  // working directory and guest environment (the state file is 0600).
  dep.state().cwd = fs::current_path().string();
  dep.state().env = host::guest_environment(environ, o.env);
  std::erase_if(*dep.state().env, [](const std::string& e) { return e.rfind("KESTREL_VM=", 0) == 0; });
  dep.state().env->push_back("KESTREL_VM=" + name);
  dep.state().vms.push_back({name, 0, "", "", image ? image->id : ""});
  dep.save();
  // Tears everything down unless the VM is kept: this also runs when we throw.
  deploy::RunGuard guard(dep, [](const std::string& e) { say("warning: " + e); });
  trace("deployment created");
  if (!o.quiet) say(fmt::format("VM {}, deployment dir {}", name, dep.dir().string()));
  if (o.verbose || tracing())
    for (const auto& line : host::describe_write_plan(writes)) say(line);

  try {
    return run_in_vm(o, name, dep, program, image_program, shares, image, signals, slot, guard);
  } catch (const Interrupted& e) {
    // A signal while waiting for a slot or during boot: tear down, say how we died.
    say_interrupted(e.signo(), name);
    return 128 + e.signo();
  }
}

static int run_in_vm(const RunOptions& o, const std::string& name, deploy::Deployment& dep, const fs::path& program,
                     bool image_program, const host::SharePlan& shares, const std::optional<image::ImageInfo>& image,
                     SignalFd& signals, deploy::Slot& slot, deploy::RunGuard& guard) {
  int slots = o.slots > 0 ? o.slots : deploy::default_slot_count(o.vm.mem_mib);
  slot = deploy::Slot::acquire(slots, &signals, [&](int n) {
    say(fmt::format("waiting for a free VM slot ({} in use; KESTREL_SLOTS sets how many)", n));
  });

  host::BootOptions boot = o.vm;
  boot.name = name;
  boot.paths = dep.vm_paths(name);
  // Before any QEMU: a runtime dir too deep for a socket path fails here, clearly.
  for (const auto& socket : {boot.paths.qmp(), boot.paths.serial(), boot.paths.agent(proto::kPortCount - 1)})
    check_socket_path(socket);
  boot.shares = shares.devices;
  // Held until the VM has booted: `image rm` leaves an image alone meanwhile.
  LockFile image_hold;
  if (image) {
    boot.image = image::disk_image(*image);
    image_hold = LockFile::lock_existing(image->files.dir, Deadline::after(5s), LockFile::Mode::kShared);
    if (!image_hold.locked()) fail("image {} ({}) was removed meanwhile", image->name, image->id);
  }
  boot.debug = o.debug;
  boot.signal_fd = signals.fd();
  if (!o.quiet) boot.notice = [](const std::string& line) { say(line); };
  boot.on_launch = [&](int pid, vm::Accel accel, bool clone) { dep.note_launch(0, pid, vm::accel_name(accel), clone); };
  trace("slot acquired");
  // Once QEMU was launched, a failed VM keeps the directory: its logs say why.
  auto keep_logs = [&] {
    if (fs::exists(boot.paths.console_log())) guard.keep_failed(kExitKestrel);
  };
  auto vm_failed = [&](const std::string& what) {
    keep_logs();
    return Error(host::describe_vm_failure(name, boot.paths, what));
  };
  std::optional<host::Machine> booted;
  try {
    booted.emplace(host::Machine::boot(boot));
  } catch (const Interrupted&) {
    throw;
  } catch (const Error&) {
    keep_logs();  // Machine::boot's message names the console log
    throw;
  }
  host::Machine& machine = *booted;
  image_hold.unlock();
  auto vm_exit = [&] { return host::explain_vm_exit(boot.paths, machine.qemu().wait(Deadline::after(1s))); };

  proto::SetupRequest setup = host::setup_request(name, shares.mounts);
  try {
    machine.agent().setup(setup, Deadline::after(30s), machine.qemu().pidfd());
    host::configure_run_network(machine, o.vm, Deadline::after(30s));
  } catch (const host::VmGone&) {
    throw vm_failed("stopped during setup: " + vm_exit());
  } catch (const Interrupted&) {
    throw;
  } catch (const Error& e) {
    throw vm_failed(std::string("could not be set up: ") + e.what());
  }
  host::note_on_console(boot.paths, fmt::format("set up as {}: {} mounts", name, setup.mounts.size()));
  trace("setup done");

  ProgramResult result =
      run_program(o, name, program, machine, boot.paths, signals, *dep.state().env, *dep.state().cwd);
  int status = result.status;
  switch (result.how) {
    case ProgramResult::How::kInterrupted:
      return status;
    case ProgramResult::How::kVmGone:
      guard.keep_failed(kExitKestrel);
      return kExitKestrel;
    case ProgramResult::How::kAgentLost:
      // --keep never still keeps the logs the message points at.
      if (o.keep == "never") keep_logs();
      break;
    case ProgramResult::How::kFinished:
      break;
  }

  bool keep = o.keep == "always" || (o.keep == "on-failure" && status != 0);
  if (keep && !guard.kept()) {
    // The program's status is the answer from here on: bookkeeping that
    // fails (the deployment dir removed under us) is a warning, not a 125.
    if (!fs::exists(dep.dir() / "deployment.json")) {
      say(fmt::format("warning: deployment dir {} was removed during the run; VM {} is not kept", dep.dir().string(),
                      name));
      return status;
    }
    try {
      guard.keep(status);
    } catch (const Error& e) {
      say(std::string("warning: cannot keep VM ") + name + ": " + e.what());
      return status;
    }
    machine.qemu().release();  // the VM outlives us
    slot.release();            // a kept VM idles; it does not count against the limit
    // The image's own programs are in its disk, which the VM keeps.
    auto copy = image_program ? std::nullopt : keep_program_copy(dep.dir(), program);
    print_kept_message(name, dep.dir(), status != 0 ? std::optional<int>(status) : std::nullopt, copy);
  }
  return status;
}

}  // namespace kestrel::cli
