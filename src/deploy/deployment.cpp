#include "deploy/deployment.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <sys/pidfd.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <nlohmann/json.hpp>

#include "deploy/reaper.hpp"
#include "util/allocation.hpp"
#include "util/error.hpp"
#include "util/fd.hpp"
#include "util/fs.hpp"
#include "util/json.hpp"

namespace kestrel::deploy {

namespace {

fs::path ensure_private_dir(const fs::path& dir) {
  // QEMU's options name sockets in this directory, and kestrel finds a VM's
  // QEMU by them in /proc/PID/cmdline: keep those arguments unambiguous.
  if (dir.string().find(',') != std::string::npos)
    fail(
        "runtime dir {} contains a comma, which QEMU's option syntax reserves; set KESTREL_RUNTIME_DIR to a "
        "path without commas",
        dir.string());
  make_dirs(dir.parent_path());
  if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) fail_errno("cannot create {}", dir.string());
  struct stat st;
  if (::lstat(dir.c_str(), &st) != 0) fail_errno("cannot stat {}", dir.string());
  if (!S_ISDIR(st.st_mode)) fail("{} is not a directory", dir.string());
  if (st.st_uid != ::getuid())
    fail("{} belongs to uid {}, not to you (uid {}); set KESTREL_RUNTIME_DIR to a directory of yours", dir.string(),
         st.st_uid, ::getuid());
  // Resolved, so that a deployment has one path (QEMU's command line names
  // it; destroy and gc find QEMUs by it) however the runtime dir was reached.
  return fs::canonical(dir);
}

// A number from deployment.json within [lo, hi], else `unknown`: the file
// may have been edited, and an absurd number must never overflow later.
template <typename T>
T number_or(const nlohmann::json& j, const char* key, int64_t lo, int64_t hi, T unknown) {
  auto it = j.find(key);
  if (it == j.end() || !it->is_number_integer()) return unknown;
  if (it->is_number_unsigned()) {
    auto v = it->get<uint64_t>();
    return v <= static_cast<uint64_t>(hi) && static_cast<int64_t>(v) >= lo ? static_cast<T>(v) : unknown;
  }
  auto v = it->get<int64_t>();
  return v >= lo && v <= hi ? static_cast<T>(v) : unknown;
}

constexpr int64_t kMaxTime = 253402300799;  // 9999-12-31T23:59:59Z
constexpr int64_t kMaxPid = 4194304;        // PID_MAX_LIMIT

}  // namespace

fs::path runtime_dir() {
  if (const char* env = std::getenv("KESTREL_RUNTIME_DIR"); env && *env) return ensure_private_dir(env);
  if (const char* xdg = std::getenv("XDG_RUNTIME_DIR"); xdg && *xdg && ::access(xdg, W_OK) == 0)
    return ensure_private_dir(fs::path(xdg) / "kestrel");
  return ensure_private_dir("/tmp/kestrel-" + std::to_string(::getuid()));
}

std::string State::to_json() const {
  nlohmann::json j;
  j["version"] = version;
  j["kind"] = kind;
  j["status"] = status;
  j["created"] = created;
  j["updated"] = updated;
  j["runner_pid"] = runner_pid;
  j["keep"] = keep;
  j["command"] = command;
  if (cwd) j["cwd"] = *cwd;
  if (env) j["env"] = *env;
  j["vms"] = nlohmann::json::array();
  for (const auto& vm : vms) {
    nlohmann::json v = {{"name", vm.name}, {"pid", vm.pid}, {"accel", vm.accel}, {"start", vm.start}};
    if (!vm.image.empty()) v["image"] = vm.image;
    j["vms"].push_back(std::move(v));
  }
  if (exit_status) j["exit_status"] = *exit_status;
  if (!slurm_job.empty()) j["slurm_job"] = slurm_job;
  // Bytes that are not UTF-8 (a path, an argument or a variable may hold
  // any) become U+FFFD instead of failing the run.
  return dump_json(j, 2, /*lossy=*/true) + "\n";
}

State State::from_json(const std::string& text, const fs::path& origin) {
  auto j = parse_json(text);
  if (!j.is_object()) fail("{}: not a kestrel state file (invalid JSON)", origin.string());
  State s;
  try {
    if (!j.contains("version")) fail("{}: not a kestrel state file (no version)", origin.string());
    s.version = number_or(j, "version", 0, INT32_MAX, -1);
    if (s.version != kStateVersion)
      fail("{}: state format version {} is not supported (this kestrel writes {})", origin.string(),
           dump_json(j["version"]), kStateVersion);
    s.kind = j.value("kind", "run");
    s.status = j.value("status", "starting");
    // Numbers out of range are unknown (0): readers fall back (registry.cpp).
    s.created = number_or(j, "created", 0, kMaxTime, int64_t{0});
    s.updated = number_or(j, "updated", 0, kMaxTime, int64_t{0});
    s.runner_pid = number_or(j, "runner_pid", 0, kMaxPid, 0);
    s.keep = j.value("keep", "on-failure");
    s.command = j.value("command", std::vector<std::string>{});
    if (j.contains("cwd")) s.cwd = j["cwd"].get<std::string>();
    if (j.contains("env")) s.env = j["env"].get<std::vector<std::string>>();
    for (const auto& vm : j.value("vms", nlohmann::json::array())) {
      VmRecord r{vm.value("name", ""), number_or(vm, "pid", 0, kMaxPid, 0), vm.value("accel", ""),
                 vm.value("start", ""), vm.value("image", "")};
      if (r.name.find('/') != std::string::npos || r.name == "." || r.name == "..") r.name.clear();
      s.vms.push_back(std::move(r));
    }
    if (int status = number_or(j, "exit_status", 0, 255, -1); status >= 0) s.exit_status = status;
    s.slurm_job = j.value("slurm_job", "");
  } catch (const nlohmann::json::exception& e) {
    fail("{}: malformed state file: {}", origin.string(), e.what());
  }
  return s;
}

Deployment Deployment::create(const std::string& name) {
  // Built under a hidden temporary name and renamed into place, so that other
  // kestrel processes (ls, gc) never see a deployment without its state file
  // or its lock.
  Deployment d;
  fs::path base = runtime_dir();
  fs::path tmp = base / (".new-" + name);
  if (::mkdir(tmp.c_str(), 0700) != 0) fail_errno("cannot create deployment directory {}", tmp.string());
  // First of all: the proof that kestrel made it (docs/deployment-dir.md).
  write_file_atomic(tmp / kMarkerFile, marker_text(name), 0600);
  d.dir_ = tmp;
  d.runner_lock_ = LockFile::try_lock(d.runner_lock_file());
  if (!d.runner_lock_.locked()) fail("cannot lock {}: held by another process", d.runner_lock_file().string());
  d.dir_ = base / name;
  d.state_.created = unix_seconds();
  d.state_.runner_pid = ::getpid();
  d.state_.slurm_job = current_allocation().job;
  d.state_.updated = d.state_.created;
  write_file_atomic(tmp / "deployment.json", d.state_.to_json(), 0600);
  if (::renameat2(AT_FDCWD, tmp.c_str(), AT_FDCWD, d.dir_.c_str(), RENAME_NOREPLACE) != 0) {
    int err = errno;
    remove_deployment_dir(tmp);
    throw sys_error(err, "cannot create deployment directory " + d.dir_.string());
  }
  return d;
}

Deployment Deployment::open(const fs::path& dir) {
  Deployment d;
  d.dir_ = fs::absolute(dir).lexically_normal();
  auto text = read_file_if_exists(d.state_file());
  if (!text) {
    if (!fs::exists(d.dir_)) fail("no deployment at {}: the directory does not exist", d.dir_.string());
    fail("{} is not a kestrel deployment directory (no deployment.json)", d.dir_.string());
  }
  d.state_ = State::from_json(*text, d.state_file());
  return d;
}

void Deployment::note_launch(size_t index, int pid, const std::string& accel, bool clone) {
  state_.vms.at(index).pid = pid;
  state_.vms.at(index).accel = accel;
  state_.vms.at(index).start = clone ? "warm" : "cold";
  state_.status = "running";
  save();
}

void Deployment::save() {
  state_.updated = unix_seconds();
  write_file_atomic(state_file(), state_.to_json(), 0600);
}

std::string qmp_prefix(const fs::path& dir) { return "unix:" + dir.string() + "/"; }

namespace {

// /proc/PID/cmdline of a process of this user, or nullopt.
std::optional<std::string> our_cmdline(int pid) {
  if (pid <= 0) return std::nullopt;
  fs::path proc = "/proc/" + std::to_string(pid);
  struct stat st;
  if (::stat(proc.c_str(), &st) != 0 || st.st_uid != ::getuid()) return std::nullopt;
  try {
    return read_file_if_exists(proc / "cmdline");
  } catch (const Error&) {
    return std::nullopt;  // gone or not readable meanwhile
  }
}

}  // namespace

bool is_vm_process(int pid, const fs::path& vm_dir) {
  auto cmdline = our_cmdline(pid);
  // Our QEMU command lines name the VM's QMP socket; nothing else does.
  return cmdline && cmdline->find("unix:" + (vm_dir / "qmp.sock").string()) != std::string::npos;
}

bool names_deployment(int pid, const fs::path& dir) {
  auto cmdline = our_cmdline(pid);
  if (!cmdline) return false;
  // A NUL-separated argument that starts with "unix:DIR/" and names a QMP socket.
  std::string prefix = std::string(1, '\0') + qmp_prefix(dir);
  size_t at = cmdline->find(prefix);
  if (at == std::string::npos) return false;
  size_t end = cmdline->find('\0', at + 1);
  std::string_view arg = std::string_view(*cmdline).substr(at + 1, end == std::string::npos ? end : end - at - 1);
  return arg.find("/qmp.sock") != std::string_view::npos;
}

std::vector<int> find_vm_processes(const fs::path& dir, const State* state, bool scan) {
  std::vector<int> pids;
  if (state) {
    for (const auto& vm : state->vms) {
      if (is_vm_process(vm.pid, dir / vm.name)) pids.push_back(vm.pid);
    }
  }
  if (!scan) return pids;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator("/proc", ec)) {
    const std::string name = entry.path().filename().string();
    if (name.empty() || name.size() > 9 || name.find_first_not_of("0123456789") != std::string::npos) continue;
    int pid = std::atoi(name.c_str());
    if (std::find(pids.begin(), pids.end(), pid) != pids.end()) continue;
    if (names_deployment(pid, dir)) pids.push_back(pid);
  }
  return pids;
}

}  // namespace kestrel::deploy
