#include "deploy/reaper.hpp"

#include <signal.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <nlohmann/json.hpp>

#include "util/error.hpp"
#include "util/fs.hpp"
#include "util/json.hpp"
#include "util/process.hpp"

namespace kestrel::deploy {

namespace {

// lstat that says whether `path` is a regular file (not a link) of ours.
bool is_our_file(const fs::path& path) {
  struct stat st;
  return ::lstat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode) && st.st_uid == ::getuid();
}

// A deployment made before the marker file: its state file holds every
// field kestrel writes, and its runner.lock is there.
bool is_legacy_deployment(const fs::path& dir) {
  if (!is_our_file(dir / "deployment.json") || !is_our_file(dir / "runner.lock")) return false;
  std::optional<std::string> text;
  try {
    text = read_file_if_exists(dir / "deployment.json");
  } catch (const Error&) {
    return false;
  }
  if (!text) return false;
  auto j = parse_json(*text);
  if (!j.is_object()) return false;
  for (const char* key : {"version", "kind", "status", "created", "updated", "runner_pid", "keep", "command", "vms"}) {
    if (!j.contains(key)) return false;
  }
  return true;
}

}  // namespace

std::string marker_text(const std::string& name) { return "kestrel deployment " + name + "\n"; }

fs::path resolve_deployment_dir(const fs::path& dir) {
  char* real = ::realpath(dir.c_str(), nullptr);
  if (!real) {
    if (errno == ENOENT || errno == ENOTDIR) fail("no such deployment: {} does not exist", dir.string());
    fail_errno("cannot resolve {}", dir.string());
  }
  fs::path out = real;
  ::free(real);
  return out;
}

std::string why_not_ours(const fs::path& dir) {
  const std::string shown = dir.string();
  fs::path base;
  try {
    base = runtime_dir();  // resolved
  } catch (const Error& e) {
    return shown + " is not one of kestrel's deployments: " + e.what();
  }
  auto refuse = [&](const std::string& why) {
    return shown + " is not one of kestrel's deployments (" + why + "); nothing was deleted";
  };
  if (!dir.is_absolute() || dir != dir.lexically_normal() || dir.parent_path() != base)
    return refuse("not directly in the runtime dir " + base.string());
  const std::string name = dir.filename().string();
  struct stat st;
  if (::lstat(dir.c_str(), &st) != 0) return refuse(std::string("cannot stat it: ") + std::strerror(errno));
  if (!S_ISDIR(st.st_mode)) return refuse("not a directory");
  if (st.st_uid != ::getuid()) return refuse("it belongs to uid " + std::to_string(st.st_uid));
  if (is_our_file(dir / kMarkerFile)) {
    std::optional<std::string> marker;
    try {
      marker = read_file_if_exists(dir / kMarkerFile);
    } catch (const Error&) {
    }
    // A deployment is born as ".new-NAME" and renamed to NAME.
    if (marker &&
        (*marker == marker_text(name) || (name.starts_with(".new-") && *marker == marker_text(name.substr(5)))))
      return "";
    return refuse(std::string(kMarkerFile) + " does not name it");
  }
  if (is_legacy_deployment(dir)) return "";
  return refuse(std::string("no ") + kMarkerFile + " file");
}

void check_ours(const fs::path& dir) {
  if (std::string why = why_not_ours(dir); !why.empty()) throw Error(why);
}

std::vector<UniqueFd> kill_deployment_vms(const fs::path& dir, const State* state, bool scan) {
  std::vector<UniqueFd> dying;
  for (int pid : find_vm_processes(dir, state, scan)) {
    UniqueFd pidfd = open_pidfd(pid);
    if (!pidfd) {
      if (errno == ESRCH) continue;  // already gone
      fail_errno("cannot kill QEMU (pid {}) of {}: pidfd_open", pid, dir.string());
    }
    // The pidfd pins the process: if the pid was recycled since the scan, the
    // check fails here, or the signal goes nowhere (ESRCH), never elsewhere.
    if (!names_deployment(pid, dir)) continue;
    if (::syscall(SYS_pidfd_send_signal, pidfd.get(), SIGKILL, nullptr, 0) != 0) {
      if (errno == ESRCH) continue;
      fail_errno("cannot kill QEMU (pid {}) of {}", pid, dir.string());
    }
    dying.push_back(std::move(pidfd));
  }
  return dying;
}

void remove_deployment_dir(const fs::path& dir, bool check_no_vm) {
  struct stat st;
  if (::lstat(dir.c_str(), &st) != 0 && errno == ENOENT) return;
  check_ours(dir);
  // Never lose track of a QEMU: its directory is how ls, gc and destroy find it.
  if (check_no_vm) {
    if (auto alive = find_vm_processes(dir, nullptr, true); !alive.empty())
      fail("cannot remove {}: its QEMU (pid {}) still runs", dir.string(), alive.front());
  }
  remove_tree_one_fs(dir);
}

}  // namespace kestrel::deploy
