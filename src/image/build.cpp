#include "image/build.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include "assets/file_stamp.hpp"
#include "deploy/deployment.hpp"
#include "deploy/naming.hpp"
#include "deploy/teardown.hpp"
#include "host/template_store.hpp"
#include "host/vm_exit.hpp"
#include "image/host_check.hpp"
#include "image/rootfs.hpp"
#include "util/error.hpp"
#include "util/fs.hpp"
#include "util/json.hpp"
#include "util/lockfile.hpp"
#include "util/sha256.hpp"
#include "util/signals.hpp"
#include "vm/qmp.hpp"

namespace kestrel::image {

namespace {

using nlohmann::json;
using namespace std::chrono_literals;

// A deployment for a VM kestrel runs for itself (provisioning, a template),
// so that `kestrel ls` shows it and gc cleans it up if we are killed.
struct ServiceVm {
  deploy::Deployment dep;
  deploy::RunGuard guard;
  host::BootOptions boot;

  ServiceVm(const std::string& stem, const BuildOptions& o, const host::DiskImage& image)
      : dep(deploy::Deployment::create(deploy::make_vm_name(stem))),
        guard(dep,
              [say = o.say](const std::string& e) {
                if (say) say("warning: " + e);
              }),
        boot(o.vm) {
    std::string name = dep.dir().filename().string();
    dep.state().kind = "image";
    dep.state().vms.push_back({name, 0, "", "", image.id});
    dep.save();
    boot.name = name;
    boot.paths = dep.vm_paths(name);
    boot.image = image;
    boot.shares.clear();
    boot.on_launch = [this](int pid, vm::Accel accel, bool clone) {
      dep.note_launch(0, pid, vm::accel_name(accel), clone);
    };
  }
};

// The recipe's `run` commands, as root in a VM booted from the new disk,
// which they change in place; then QEMU quits cleanly (its qcow2 caches
// written back).
void provision(const Recipe& r, const fs::path& disk, const BuildOptions& o, Progress& progress) {
  progress.stage("provision", fmt::format("{} command(s) as root in a VM booted from the image", r.run.size()));
  host::DiskImage image{disk, "", r.name, {}, true};
  ServiceVm vm("image-" + r.name, o, image);
  vm.boot.warm = false;
  vm.boot.die_with_parent = true;  // a killed build leaves no VM writing its disk
  host::Machine machine = host::Machine::boot(vm.boot);
  auto run = [&](const std::vector<std::string>& argv, const std::string& what) {
    proto::Exec exec;
    exec.argv = argv;
    exec.env = {"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME=/root", "LANG=C.UTF-8",
                "DEBIAN_FRONTEND=noninteractive"};
    exec.cwd = "/";
    host::ExecIo io;
    io.stdout_fd = 2;  // the commands' output is progress, like mmdebstrap's
    io.signal_fd = o.vm.signal_fd;
    io.vm_pidfd = machine.qemu().pidfd();
    io.timeout = Deadline::after(60min);
    host::ExecOutcome out = machine.agent().exec(exec, io);
    using Kind = host::ExecOutcome::Kind;
    if (out.kind == Kind::kInterrupted) throw Interrupted(out.signo);
    if (out.kind != Kind::kExited) fail("provisioning command {} did not finish: {}", what, out.message);
    std::string oom = out.status.oom.empty() ? "" : " (" + host::describe_oom(out.status.oom, vm.boot.mem_mib) + ")";
    if (int status = out.status.shell_status(); status != 0)
      fail("provisioning command {} of {} failed with exit status {}{}", what, r.path.string(), status, oom);
    if (!oom.empty() && progress.say) progress.say(host::describe_oom(out.status.oom, vm.boot.mem_mib));
  };
  for (size_t i = 0; i < r.run.size(); ++i) run({"/bin/sh", "-c", r.run[i]}, fmt::format("{} (`{}`)", i + 1, r.run[i]));
  run({"/bin/sync"}, "sync");
  // A clean quit: QEMU writes its qcow2 metadata back (a SIGKILL may not).
  Deadline deadline = Deadline::after(30s);
  try {
    vm::Qmp qmp = vm::Qmp::connect(vm.boot.paths.qmp(), deadline, machine.qemu().pidfd());
    qmp.execute("quit", deadline);
  } catch (const Error&) {
    // It may close the monitor before it answers; it is quitting either way.
  }
  if (!machine.qemu().wait(deadline)) fail("the provisioning VM did not quit; its disk may be incomplete");
  progress.done("");
}

// Waits for the recipe's lock (another kestrel may be building it).
LockFile lock_recipe(const std::string& digest, const std::string& name, const BuildOptions& o) {
  make_dirs(recipe_lock(digest).parent_path(), 0755);
  LockFile lock = LockFile::try_lock(recipe_lock(digest));
  if (lock.locked()) return lock;
  auto text = read_file_if_exists(recipe_lock(digest)).value_or("");
  if (o.say)
    o.say(fmt::format("image {}: waiting for another kestrel{} building it", name,
                      text.empty() ? "" : " (pid " + text.substr(0, text.find('\n')) + ")"));
  for (Deadline limit = Deadline::after(120min);;) {
    if ((lock = LockFile::try_lock(recipe_lock(digest))).locked()) return lock;
    if (limit.expired()) fail("gave up waiting for the build of image {} by another kestrel", name);
    sleep_or_throw(o.vm.signal_fd, 200, SIGWINCH);
  }
}

std::string image_id(const std::string& digest, const std::vector<std::string>& packages) {
  Sha256 h;
  h.update("kestrel-image-" + std::to_string(kImageFormat) + "\n" + digest + "\n");
  for (const auto& p : packages) h.update(p + "\n");
  return h.hex_digest().substr(0, 16);
}

json describe(const Recipe& r, const std::string& digest, const std::string& id, const RootFs& fs_,
              std::chrono::steady_clock::time_point started) {
  json services = json::array();
  for (const auto& s : r.services)
    services.push_back({{"name", s.name},
                        {"command", s.command},
                        {"ready", s.ready.spec()},
                        {"ready_timeout_ms", s.ready_timeout.count()}});
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - started);
  return {{"format", kImageFormat},
          {"id", id},
          {"name", r.name},
          {"recipe", r.path.string()},
          {"recipe_digest", digest},
          {"suite", r.suite},
          {"size_bytes", r.size_bytes},
          {"requested", r.packages},
          {"packages", fs_.packages},
          {"services", services},
          {"created", unix_seconds()},
          {"build_ms", ms.count()}};
}

}  // namespace

bool names_recipe(const std::string& value) { return value.find('/') != std::string::npos || value.ends_with(".toml"); }

ImageInfo resolve_image(const std::string& value, const BuildOptions& o) {
  if (names_recipe(value)) {
    bool built = false;
    ImageInfo image = ensure_image(load_recipe(value), o, &built);
    // As `image build` does: the run then starts from this template.
    if (built) prepare_template(image, o);
    return image;
  }
  if (auto found = find_image(value)) return *found;
  fail(
      "no image named {} (`kestrel image ls` lists them); give its recipe's path instead (e.g. images/{}.toml), "
      "and kestrel builds it",
      value, value);
}

ImageInfo ensure_image(const Recipe& r, const BuildOptions& o, bool* built) {
  if (built) *built = false;
  std::string digest = recipe_digest(r);
  auto before = find_built(digest);
  if (before && !o.refresh) return *before;

  LockFile lock = lock_recipe(digest, r.name, o);
  auto now = find_built(digest);
  // Built (or refreshed) by the kestrel we waited for.
  if (now && (!o.refresh || !before || now->id != before->id)) return *now;
  std::string pid = std::to_string(::getpid()) + "\n";
  if (::ftruncate(lock.fd(), 0) == 0) (void)!::pwrite(lock.fd(), pid.data(), pid.size(), 0);

  if (ToolsCheck tools = check_build_tools(); !tools.ok) fail("{}; fix: {}", tools.detail, tools.fix);
  auto started = std::chrono::steady_clock::now();
  fs::path work = build_dir(digest);
  // A builder that died left it; we hold the recipe's lock, which a build's
  // processes hold as long as any of them lives: none is writing there. Never
  // across a mount point a build left (it mounts only in its own namespace).
  remove_tree_one_fs(work);
  make_dirs(work, 0700);
  struct RemoveWork {
    fs::path dir;
    ~RemoveWork() {
      try {
        remove_tree_one_fs(dir);
      } catch (const Error&) {
      }
    }
  } cleanup{work};

  Progress progress;
  progress.name = r.name;
  progress.say = o.say;
  progress.signal_fd = o.vm.signal_fd;
  RootFs rootfs = build_rootfs(r, work, progress);
  std::string id = image_id(digest, rootfs.packages);
  if (now && now->id == id) {
    if (o.say) o.say(fmt::format("image {}: no package changed; {} stays current", r.name, id));
    return *now;
  }
  if (!r.run.empty()) provision(r, fs::absolute(rootfs.disk), o, progress);

  if (::chmod(rootfs.disk.c_str(), 0444) != 0) fail_errno("cannot make {} read-only", rootfs.disk.string());
  write_file_atomic(work / "recipe.toml", read_file(r.path), 0644);
  json meta = describe(r, digest, id, rootfs, started);
  meta["disk"] = assets::file_stamp(rootfs.disk);
  write_file_atomic(work / "image.json", dump_json(meta, 2) + "\n", 0644);
  for (const auto& leftover : {"build.log", "fakeroot.state"}) fs::remove(work / leftover);

  ImageFiles final = image_files(id);
  std::error_code ec;
  if (!fs::exists(final.dir, ec)) {
    if (::rename(work.c_str(), final.dir.c_str()) != 0) fail_errno("cannot move image {} into place", id);
  }
  set_ref(digest, id);
  if (built) *built = true;
  return read_image(final.dir);
}

void prepare_template(const ImageInfo& image, const BuildOptions& o) {
  Progress progress;
  progress.name = image.name;
  progress.say = o.say;
  host::DiskImage disk = disk_image(image);
  std::string names;
  for (const auto& s : disk.services) names += (names.empty() ? "" : ", ") + s.name;
  progress.stage("services", names.empty() ? "none; booting a VM of the image for its warm-start template"
                                           : "starting " + names + " in a VM of the image, waiting until ready");
  ServiceVm vm("image-" + image.name, o, disk);
  vm.boot.warm = true;
  host::Machine machine = host::Machine::boot(vm.boot);
  progress.done("");
  // The template was saved on the way (or existed): what clones start from.
  std::optional<host::TemplateInfo> newest;
  for (auto& t : host::list_templates())
    if (t.meta.is_object() && t.meta.value("image", "") == image.id &&
        (!newest || t.meta.value("created", 0) > newest->meta.value("created", 0)))
      newest = std::move(t);
  if (newest && o.say)
    o.say(
        fmt::format("image {}: snapshot: warm-start template {} with the services running, {} on disk "
                    "(memory, devices, frozen disk overlay; booted and saved in {:.1f} s)",
                    image.name, newest->key.substr(0, 12), human_size(newest->disk_bytes),
                    newest->meta.value("build_ms", int64_t{0}) / 1000.0));
}

}  // namespace kestrel::image
