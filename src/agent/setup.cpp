#include "agent/setup.hpp"

#include <fcntl.h>
#include <fmt/ranges.h>
#include <linux/random.h>
#include <sys/ioctl.h>
#include <sys/klog.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <iterator>
#include <optional>
#include <thread>

#include "agent/identity.hpp"
#include "agent/log.hpp"
#include "agent/modules.hpp"
#include "agent/network.hpp"
#include "util/deadline.hpp"
#include "util/fs.hpp"
#include "util/strings.hpp"

namespace kestrel::agent {

namespace {

std::string options_9p(const char* cache) { return fmt::format("{},{}", k9pBaseOptions, cache); }

bool has_dotdot(std::string_view path) {
  for (const auto& part : split(path, '/'))
    if (part == "..") return true;
  return false;
}

void check_share(const proto::Mount& m) {
  if (m.tag.empty() || m.tag.find('\0') != std::string::npos || m.tag.find(',') != std::string::npos)
    fail("invalid 9p tag '{}'", m.tag);
  const std::string& t = m.target;
  if (t.empty() || t[0] != '/') fail("mount target '{}' of share '{}' is not an absolute path", t, m.tag);
  if (t.find('\0') != std::string::npos) fail("mount target of share '{}' contains a NUL byte", m.tag);
  if (has_dotdot(t)) fail("mount target '{}' contains '..'", t);
}

// A disk root's tag: "/dev/" and a plain path below it.
void check_disk(const proto::Mount& m) {
  std::string_view d = m.tag;
  bool ok = d.starts_with("/dev/") && d.size() > 5 && !has_dotdot(d);
  for (char c : d) {
    ok = ok && ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
                c == '-' || c == '/');
  }
  if (!ok) fail("invalid disk root device '{}': expected a path under /dev/, e.g. /dev/vda", d.substr(0, 200));
  std::string_view t = m.target;
  ok = !t.empty() && t.size() <= 32;
  for (char c : t) ok = ok && ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'));
  if (!ok) fail("invalid file system type '{}' for disk root {}: expected [a-z0-9]+, e.g. ext4", t.substr(0, 200), d);
}

// Whether the kernel knows a file system type (/proc/filesystems); true when
// it cannot tell.
bool kernel_has_filesystem(const std::string& fstype) {
  std::optional<std::string> text;
  try {
    text = read_file_if_exists("/proc/filesystems");
  } catch (const Error&) {
    return true;
  }
  if (!text) return true;
  for (const auto& line : split(*text, '\n')) {
    std::string_view name = trim(line);
    if (size_t blank = name.find_last_of(" \t"); blank != std::string_view::npos) name = name.substr(blank + 1);
    if (name == fstype) return true;
  }
  return false;
}

// The last kernel log lines about a block device, e.g. "EXT4-fs (vda):
// Cannot load crc32c driver.", joined with "; ". "" if there are none.
std::string kernel_log_about(const std::string& device) {
  constexpr int kReadAll = 3, kSizeBuffer = 10;  // SYSLOG_ACTION_*, syslog(2)
  std::string tag = "(" + device.substr(device.find_last_of('/') + 1) + ")";
  int size = ::klogctl(kSizeBuffer, nullptr, 0);
  if (size <= 0) return "";
  std::string log(static_cast<size_t>(size), '\0');
  int n = ::klogctl(kReadAll, log.data(), size);
  if (n <= 0) return "";
  log.resize(static_cast<size_t>(n));
  std::vector<std::string> lines;
  for (const auto& line : split(log, '\n')) {
    std::string_view text = line;
    if (text.find(tag) == std::string_view::npos) continue;
    if (text.starts_with("<")) text.remove_prefix(std::min(text.find('>') + 1, text.size()));  // <level>
    if (text.starts_with("[")) text.remove_prefix(std::min(text.find(']') + 1, text.size()));  // [time]
    lines.emplace_back(trim(text));
  }
  if (lines.size() > 3) lines.erase(lines.begin(), lines.end() - 3);
  return fmt::format("{}", fmt::join(lines, "; "));
}

void run_step(const MountStep& s, const std::string& root) {
  std::optional<RootScope> scope;
  if (s.in_guest_root) scope.emplace(root);
  for (const auto& d : s.make_dirs) make_dirs_p(d);
  const char* data = s.data.empty() ? nullptr : s.data.c_str();
  if (::mount(s.source.c_str(), s.target.c_str(), s.fstype.empty() ? nullptr : s.fstype.c_str(), s.flags, data) == 0)
    return;
  int err = errno;
  // "No such device" would send the user looking for the disk.
  if (err == ENODEV && s.fstype != "9p" && !s.fstype.empty() && !kernel_has_filesystem(s.fstype))
    fail(
        "cannot mount {}: the guest kernel has no {} file system (neither built in nor loaded from "
        "/lib/modules/load.disk)",
        s.what, s.fstype);
  if (s.disk) {
    if (std::string kernel = kernel_log_about(s.source); !kernel.empty())
      fail("cannot mount {}: {} (kernel: {})", s.what, std::strerror(err), kernel);
  }
  throw sys_error(err, "cannot mount " + s.what);
}

// docs/guest.md, load.disk: loaded once per boot, when a disk root first
// needs them (a host-root VM never pays for them). Returns the failures.
const std::vector<std::string>& load_disk_modules(const std::string& dir) {
  static std::optional<std::vector<std::string>> failures;
  if (!failures) failures = load_module_list(dir, "load.disk");
  return *failures;
}

void wait_for_device(const std::string& device, const std::vector<std::string>& module_failures) {
  Deadline deadline = Deadline::after(std::chrono::milliseconds(kDiskWaitMs));
  for (;;) {
    struct stat st;
    if (::stat(device.c_str(), &st) == 0) {
      if (S_ISBLK(st.st_mode)) return;
      fail("cannot mount {}: it is not a block device", device);
    }
    if (errno != ENOENT) fail_errno("cannot mount {}", device);
    if (deadline.expired()) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  std::string why =
      module_failures.empty() ? "no disk driver or no such disk" : fmt::format("{}", fmt::join(module_failures, "; "));
  fail("cannot mount {}: the device did not appear within {} s ({})", device, kDiskWaitMs / 1000, why);
}

void set_clock(int64_t realtime_ns) {
  timespec ts{};
  ts.tv_sec = static_cast<time_t>(realtime_ns / 1000000000);
  ts.tv_nsec = static_cast<long>(realtime_ns % 1000000000);
  if (::clock_settime(CLOCK_REALTIME, &ts) != 0) fail_errno("cannot set the clock");
}

void add_entropy(const std::string& bytes) {
  UniqueFd fd(::open("/dev/urandom", O_WRONLY | O_CLOEXEC));
  if (!fd) fail_errno("cannot open /dev/urandom");
  if (!bytes.empty()) {
    // struct rand_pool_info ends in a flexible array: build it in a buffer.
    size_t words = (bytes.size() + 3) / 4;
    std::vector<int> buf(2 + words, 0);
    buf[0] = static_cast<int>(bytes.size() * 8);  // entropy_count, in bits
    buf[1] = static_cast<int>(bytes.size());      // buf_size, in bytes
    std::memcpy(buf.data() + 2, bytes.data(), bytes.size());
    if (::ioctl(fd.get(), RNDADDENTROPY, buf.data()) != 0) fail_errno("cannot add entropy (RNDADDENTROPY)");
  }
  // Clones of one snapshot share the CRNG state: force a reseed now.
  if (::ioctl(fd.get(), RNDRESEEDCRNG) != 0) fail_errno("cannot reseed the kernel's RNG (RNDRESEEDCRNG)");
}

const char* limit_name(uint32_t resource) {
  static const char* const names[] = {"cpu",      "fsize",  "data",    "stack", "core",  "rss",
                                      "nproc",    "nofile", "memlock", "as",    "locks", "sigpending",
                                      "msgqueue", "nice",   "rtprio",  "rttime"};
  return resource < std::size(names) ? names[resource] : "unknown";
}

// The guest's fs.nr_open: the highest hard limit of open files it takes.
rlim_t nr_open() {
  try {
    if (auto text = read_file_if_exists("/proc/sys/fs/nr_open")) {
      std::string_view digits = trim(*text);
      rlim_t n = 0;
      auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), n);
      if (ec == std::errc() && end == digits.data() + digits.size() && n > 0) return n;
    }
  } catch (const Error&) {
  }
  return 1048576;  // the kernel's default
}

// Logs what it cannot set: a run is better off with the guest's own limit.
// /proc/sys/fs/nr_open is read only when the kernel refuses a hard limit of
// open files (EPERM above it): a read of /proc costs milliseconds of fresh
// translation under TCG on every run, and the host's limit is rarely above
// the kernel's default.
void set_limits(const std::vector<proto::Limit>& limits) {
  for (const auto& l : limits) {
    rlimit r{static_cast<rlim_t>(l.soft), static_cast<rlim_t>(l.hard)};
    r.rlim_cur = std::min(r.rlim_cur, r.rlim_max);
    auto resource = static_cast<__rlimit_resource>(l.resource);
    bool set = ::setrlimit(resource, &r) == 0;
    if (!set && errno == EPERM && l.resource == RLIMIT_NOFILE) {
      r.rlim_max = std::min(r.rlim_max, nr_open());
      r.rlim_cur = std::min(r.rlim_cur, r.rlim_max);
      set = ::setrlimit(resource, &r) == 0;
    }
    if (!set)
      log_errorf("cannot set the resource limit {} to {}/{}: {}", limit_name(l.resource), l.soft, l.hard,
                 std::strerror(errno));
  }
}

}  // namespace

RootScope::RootScope(const std::string& dir) {
  if (dir.empty()) return;
  old_root_ = UniqueFd(::open("/", O_PATH | O_DIRECTORY | O_CLOEXEC));
  old_cwd_ = UniqueFd(::open(".", O_PATH | O_DIRECTORY | O_CLOEXEC));
  if (!old_root_ || !old_cwd_) fail_errno("cannot open the agent's root directory");
  if (::chroot(dir.c_str()) != 0) {
    old_root_.reset();
    fail_errno("cannot enter the guest root {}", dir);
  }
  if (::chdir("/") != 0) {
    int err = errno;
    leave();
    throw sys_error(err, "cannot enter the guest root " + dir);
  }
}

void RootScope::leave() {
  if (!old_root_) return;
  if (::fchdir(old_root_.get()) != 0 || ::chroot(".") != 0 || ::fchdir(old_cwd_.get()) != 0)
    log_errorf("cannot return from the guest root: {}", std::strerror(errno));
  old_root_.reset();
}

void make_dirs_p(const std::string& path) {
  if (::mkdir(path.c_str(), 0755) == 0 || errno == EEXIST) return;
  if (errno != ENOENT) fail_errno("cannot create directory {}", path);
  size_t slash = path.find_last_of('/');
  if (slash != std::string::npos && slash > 0) make_dirs_p(path.substr(0, slash));
  if (::mkdir(path.c_str(), 0755) != 0 && errno != EEXIST) fail_errno("cannot create directory {}", path);
}

MountPlan plan_mounts(const std::vector<proto::Mount>& mounts, const SetupPaths& paths) {
  MountPlan plan;
  const proto::Mount* root_mount = nullptr;
  for (const auto& m : mounts) {
    if (!m.is_root()) continue;
    if (root_mount) fail("more than one root mount ('{}' and '{}')", root_mount->tag, m.tag);
    root_mount = &m;
  }
  const std::string root = paths.sysroot;
  auto add = [&](MountStep s) { plan.steps.push_back(std::move(s)); };
  if (root_mount && root_mount->kind == proto::MountKind::kRootOverlay) {
    if (root_mount->tag.empty() || root_mount->tag.find_first_of(std::string_view(",\0", 2)) != std::string::npos)
      fail("invalid 9p tag '{}'", root_mount->tag);
    const std::string lower = paths.mnt + "/lower", rw = paths.mnt + "/rw";
    add({root_mount->tag,
         lower,
         "9p",
         options_9p(k9pCachedOptions),
         MS_RDONLY,
         {lower},
         false,
         fmt::format("9p share '{}' at {}", root_mount->tag, lower)});
    add({"tmpfs", rw, "tmpfs", "mode=0755", 0, {rw}, false, "the overlay's tmpfs at " + rw});
    add({"overlay",
         root,
         "overlay",
         fmt::format("lowerdir={},upperdir={}/upper,workdir={}/work", lower, rw, rw),
         0,
         {rw + "/upper", rw + "/work", root},
         false,
         "the root overlay at " + root});
    plan.lower = lower;
    plan.upper = rw + "/upper";
  } else if (root_mount) {
    check_disk(*root_mount);
    // Named by its device alone: "cannot mount /dev/vda: ...".
    add({root_mount->tag, root, root_mount->target, "", 0, {root}, false, root_mount->tag, true});
    plan.device = root_mount->tag;
  }
  if (root_mount) {
    // The guest's own /proc, /sys, /dev and /run hide the root's: the host
    // knows this list too (host/shares.cpp, hidden_in_guest), keep them equal.
    // Binds of the agent's own /proc and /sys (one pid namespace, one
    // kernel): cheaper than new instances.
    add({"/proc", root + "/proc", "", "", MS_BIND | MS_REC, {root + "/proc"}, false, "/proc at " + root + "/proc"});
    add({"/sys", root + "/sys", "", "", MS_BIND | MS_REC, {root + "/sys"}, false, "/sys at " + root + "/sys"});
    // A bind of our /dev (devtmpfs with devpts and shm under it) keeps one
    // devpts instance, so the ptys the agent allocates exist for programs.
    add({"/dev", root + "/dev", "", "", MS_BIND | MS_REC, {root + "/dev"}, false, "/dev at " + root + "/dev"});
    add({"tmpfs",
         root + "/run",
         "tmpfs",
         "mode=0755",
         MS_NOSUID | MS_NODEV,
         {root + "/run"},
         false,
         "tmpfs at " + root + "/run"});
    plan.root = root;
  }
  for (const auto& m : mounts) {
    if (m.is_root()) continue;
    check_share(m);
    bool rw = m.kind == proto::MountKind::kReadWrite;
    MountStep s{m.tag,
                m.target,
                "9p",
                options_9p(rw ? k9pWriteThroughOptions : k9pCachedOptions),
                rw ? 0UL : static_cast<unsigned long>(MS_RDONLY),
                {m.target},
                true,
                fmt::format("9p share '{}' at {}", m.tag, m.target)};
    plan.steps.push_back(std::move(s));
  }
  return plan;
}

std::string apply_setup(const proto::SetupRequest& request, const std::string& current_root, const SetupPaths& paths) {
  // Validate everything before changing anything.
  MountPlan plan;
  try {
    plan = plan_mounts(request.mounts, paths);
    if (request.hostname.size() > 64 || request.hostname.find('\0') != std::string::npos)
      fail("invalid hostname '{}'", request.hostname);
  } catch (const Error& e) {
    throw InvalidSetup(e.what());
  }

  if (!request.hostname.empty() && ::sethostname(request.hostname.data(), request.hostname.size()) != 0)
    fail_errno("cannot set the hostname to '{}'", request.hostname);
  // 0 means "no clock from the host": better a stale clock than 1970.
  if (request.realtime_ns > 0) set_clock(request.realtime_ns);
  add_entropy(request.entropy);
  debugf("setup: hostname, clock and entropy done");

  if (!plan.device.empty()) wait_for_device(plan.device, load_disk_modules(paths.modules));
  // Shares land in the root mounted here, else in the one in place.
  std::string root = plan.root.empty() ? current_root : "";
  GuestIdentity identity{request.hostname, offline_network(), std::nullopt, request.localtime, request.timezone};
  if (!request.hosts.empty()) identity.hosts = request.hosts;
  bool named = false;
  for (const auto& step : plan.steps) {
    if (!plan.upper.empty() && step.target == plan.root) {
      make_dirs_p(plan.upper);
      set_identity_in_upper(plan.lower, plan.upper, identity);
      named = true;
    }
    run_step(step, root);
    if (step.target == plan.root) root = plan.root;
    debugf("setup: mounted {}", step.what);
  }
  set_limits(request.limits);
  if (!named) set_identity(plan.root.empty() ? current_root : plan.root, identity);
  debugf("set up as {}: {} mounts", request.hostname, request.mounts.size());
  return plan.root;
}

std::vector<std::string> write_through_dirs(const proto::SetupRequest& request, const std::string& root) {
  std::vector<std::string> dirs;
  for (const auto& m : request.mounts)
    if (m.kind == proto::MountKind::kReadWrite) dirs.push_back(root + m.target);
  return dirs;
}

void flush_dirs(const std::vector<std::string>& dirs) {
  for (const auto& d : dirs) {
    UniqueFd fd(::open(d.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!fd || ::syncfs(fd.get()) != 0) log_errorf("cannot flush {}: {}", d, std::strerror(errno));
  }
}

}  // namespace kestrel::agent
