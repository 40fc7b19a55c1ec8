#include "agent/setup.hpp"

#include <fcntl.h>
#include <linux/random.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <memory>

#include "agent/log.hpp"
#include "util/error.hpp"
#include "util/fd.hpp"

namespace kestrel::agent {

namespace {

std::string options_9p(const char* cache) { return fmt::format("{},{}", k9pBaseOptions, cache); }

void check_share(const proto::Mount& m) {
  if (m.tag.empty() || m.tag.find('\0') != std::string::npos || m.tag.find(',') != std::string::npos)
    fail("invalid 9p tag '{}'", m.tag);
  const std::string& t = m.target;
  if (t.empty() || t[0] != '/') fail("mount target '{}' of share '{}' is not an absolute path", t, m.tag);
  if (t.find('\0') != std::string::npos) fail("mount target of share '{}' contains a NUL byte", m.tag);
  std::string_view rest(t);
  while (!rest.empty()) {
    size_t slash = rest.find('/');
    if (rest.substr(0, slash) == "..") fail("mount target '{}' contains '..'", t);
    if (slash == std::string_view::npos) break;
    rest.remove_prefix(slash + 1);
  }
}

void mkdir_p(const std::string& path) {
  if (::mkdir(path.c_str(), 0755) == 0 || errno == EEXIST) return;
  if (errno != ENOENT) fail_errno("cannot create directory {}", path);
  size_t slash = path.find_last_of('/');
  if (slash != std::string::npos && slash > 0) mkdir_p(path.substr(0, slash));
  if (::mkdir(path.c_str(), 0755) != 0 && errno != EEXIST) fail_errno("cannot create directory {}", path);
}

// Chroots this process into dir until destroyed, for path resolution inside
// the guest root, then returns to the original root through a descriptor of it.
class RootScope {
 public:
  explicit RootScope(const std::string& dir) {
    old_root_ = UniqueFd(::open("/", O_PATH | O_DIRECTORY | O_CLOEXEC));
    old_cwd_ = UniqueFd(::open(".", O_PATH | O_DIRECTORY | O_CLOEXEC));
    if (!old_root_ || !old_cwd_) fail_errno("cannot open the agent's root directory");
    if (::chroot(dir.c_str()) != 0) fail_errno("cannot enter the guest root {}", dir);
    if (::chdir("/") != 0) {
      int err = errno;
      leave();
      throw sys_error(err, "cannot enter the guest root " + dir);
    }
  }
  RootScope(const RootScope&) = delete;
  RootScope& operator=(const RootScope&) = delete;
  ~RootScope() { leave(); }

 private:
  void leave() {
    if (!old_root_) return;
    if (::fchdir(old_root_.get()) != 0 || ::chroot(".") != 0 || ::fchdir(old_cwd_.get()) != 0)
      log_errorf("cannot return from the guest root: {}", std::strerror(errno));
    old_root_.reset();
  }
  UniqueFd old_root_, old_cwd_;
};

void run_step(const MountStep& s, const std::string& root) {
  std::unique_ptr<RootScope> scope;
  if (s.in_guest_root && !root.empty()) scope = std::make_unique<RootScope>(root);
  for (const auto& d : s.make_dirs) mkdir_p(d);
  const char* data = s.data.empty() ? nullptr : s.data.c_str();
  if (::mount(s.source.c_str(), s.target.c_str(), s.fstype.empty() ? nullptr : s.fstype.c_str(), s.flags, data) != 0)
    fail_errno("cannot mount {}", s.what);
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

}  // namespace

MountPlan plan_mounts(const std::vector<proto::Mount>& mounts, const SetupPaths& paths) {
  MountPlan plan;
  const proto::Mount* overlay = nullptr;
  for (const auto& m : mounts) {
    if (m.kind != proto::MountKind::kRootOverlay) continue;
    if (overlay) fail("more than one root overlay mount ('{}' and '{}')", overlay->tag, m.tag);
    overlay = &m;
  }
  if (overlay) {
    if (overlay->tag.empty() || overlay->tag.find_first_of(std::string_view(",\0", 2)) != std::string::npos)
      fail("invalid 9p tag '{}'", overlay->tag);
    const std::string lower = paths.mnt + "/lower", rw = paths.mnt + "/rw", root = paths.sysroot;
    auto add = [&](MountStep s) { plan.steps.push_back(std::move(s)); };
    add({overlay->tag,
         lower,
         "9p",
         options_9p(k9pCachedOptions),
         MS_RDONLY,
         {lower},
         false,
         fmt::format("9p share '{}' at {}", overlay->tag, lower)});
    add({"tmpfs", rw, "tmpfs", "mode=0755", 0, {rw}, false, "the overlay's tmpfs at " + rw});
    add({"overlay",
         root,
         "overlay",
         fmt::format("lowerdir={},upperdir={}/upper,workdir={}/work", lower, rw, rw),
         0,
         {rw + "/upper", rw + "/work", root},
         false,
         "the root overlay at " + root});
    // The guest's own /proc, /sys, /dev and /run hide the host's: the host
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
    if (m.kind == proto::MountKind::kRootOverlay) continue;
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

std::string apply_setup(const proto::SetupRequest& request, const SetupPaths& paths) {
  // Validate everything before changing anything.
  MountPlan plan = plan_mounts(request.mounts, paths);
  if (request.hostname.size() > 64 || request.hostname.find('\0') != std::string::npos)
    fail("invalid hostname '{}'", request.hostname);

  if (!request.hostname.empty() && ::sethostname(request.hostname.data(), request.hostname.size()) != 0)
    fail_errno("cannot set the hostname to '{}'", request.hostname);
  // 0 means "no clock from the host": better a stale clock than 1970.
  if (request.realtime_ns > 0) set_clock(request.realtime_ns);
  add_entropy(request.entropy);
  debugf("setup: hostname, clock and entropy done");

  std::string root;  // the guest root once the overlay is mounted
  for (const auto& step : plan.steps) {
    run_step(step, root);
    if (step.target == plan.root) root = plan.root;
    debugf("setup: mounted {}", step.what);
  }
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
