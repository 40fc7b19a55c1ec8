#include "util/fs.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <functional>
#include <vector>

#include "util/error.hpp"
#include "util/fd.hpp"
#include "util/io.hpp"
#include "util/strings.hpp"

namespace kestrel {

std::optional<std::string> read_file_if_exists(const fs::path& path) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) {
    if (errno == ENOENT) return std::nullopt;
    fail_errno("cannot open {}", path.string());
  }
  std::string out;
  char buf[65536];
  for (;;) {
    ssize_t n = read_some(fd.get(), buf);
    if (n < 0) fail_errno("cannot read {}", path.string());
    if (n == 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  return out;
}

std::optional<std::string> read_small_file(const fs::path& path, size_t limit, bool follow) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC | (follow ? 0 : O_NOFOLLOW)));
  struct stat st;
  if (!fd || ::fstat(fd.get(), &st) != 0 || !S_ISREG(st.st_mode)) return std::nullopt;
  std::string out;
  char buf[16384];
  for (;;) {
    ssize_t n = read_some(fd.get(), buf);
    if (n < 0) return std::nullopt;
    if (n == 0) break;
    out.append(buf, static_cast<size_t>(n));
    if (out.size() > limit) return std::nullopt;  // read no further than that
  }
  return out;
}

std::string read_file(const fs::path& path) {
  auto data = read_file_if_exists(path);
  if (!data) throw sys_error(ENOENT, "cannot open " + path.string());
  return *data;
}

void write_file_atomic(const fs::path& path, std::string_view data, mode_t mode) {
  fs::path tmp = path;
  tmp += ".tmp." + std::to_string(::getpid());
  {
    UniqueFd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode));
    if (!fd) fail_errno("cannot create {}", tmp.string());
    if (int err = try_write_all(fd.get(), data)) {
      ::unlink(tmp.c_str());
      throw sys_error(err, "cannot write " + tmp.string());
    }
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    int err = errno;
    ::unlink(tmp.c_str());
    throw sys_error(err, "cannot rename " + tmp.string() + " to " + path.string());
  }
}

void make_dirs(const fs::path& path, mode_t mode) {
  if (path.empty()) return;
  struct stat st;
  if (::stat(path.c_str(), &st) == 0) {
    if (!S_ISDIR(st.st_mode)) fail("cannot create directory {}: a file is in the way", path.string());
    return;
  }
  if (path.has_parent_path() && path.parent_path() != path) make_dirs(path.parent_path(), mode);
  if (::mkdir(path.c_str(), mode) != 0 && errno != EEXIST) fail_errno("cannot create directory {}", path.string());
}

void remove_tree(const fs::path& path) {
  std::error_code ec;
  fs::remove_all(path, ec);
  if (ec && ec != std::errc::no_such_file_or_directory) fail("cannot remove {}: {}", path.string(), ec.message());
}

namespace {

constexpr size_t kMaxDepth = 65536;
constexpr int kMaxListings = 3;

// A directory on the way down: its identity (checked when we come back up
// through ".."), its name in its parent and the entries still to remove.
struct Level {
  dev_t dev;
  ino_t ino;
  std::string name;
  std::vector<std::string> todo;
  int listings = 1;
};

// Paths for error messages are built only on error: building one per
// directory would make removing a deep tree quadratic.
using Shown = std::function<std::string()>;

}  // namespace

std::vector<std::string> list_dir_fd(int fd, const std::function<std::string()>& shown) {
  // A duplicate shares the offset with fd: rewind, as the last listing read it all.
  UniqueFd dup(::fcntl(fd, F_DUPFD_CLOEXEC, 0));
  if (!dup) fail_errno("cannot list {}", shown());
  DIR* dir = ::fdopendir(dup.get());
  if (!dir) fail_errno("cannot list {}", shown());
  dup.release();
  ::rewinddir(dir);
  std::vector<std::string> names;
  errno = 0;
  while (struct dirent* e = ::readdir(dir)) {
    std::string_view name = e->d_name;
    if (name != "." && name != "..") names.emplace_back(name);
    errno = 0;
  }
  int err = errno;
  ::closedir(dir);
  if (err) throw sys_error(err, "cannot list " + shown());
  return names;
}

namespace {

// Opens the directory `name` in `at` (whose lstat is `st`) to empty it,
// first making it u+rwx if it is ours and lacks those bits.
UniqueFd open_to_empty(int at, const std::string& name, const struct stat& st, const Shown& shown) {
  if (st.st_uid == ::geteuid() && (st.st_mode & 0700) != 0700 &&
      ::fchmodat(at, name.c_str(), (st.st_mode & 07777) | 0700, AT_SYMLINK_NOFOLLOW) != 0)
    fail_errno("cannot make {} accessible to remove it", shown());
  UniqueFd fd(::openat(at, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (!fd) fail_errno("cannot open {} to remove it", shown());
  struct stat now;
  if (::fstat(fd.get(), &now) != 0) fail_errno("cannot stat {}", shown());
  if (now.st_dev != st.st_dev || now.st_ino != st.st_ino) fail("cannot remove {}: it was replaced meanwhile", shown());
  return fd;
}

}  // namespace

bool path_within(const fs::path& path, const fs::path& dir) {
  const std::string& p = path.native();
  std::string d = dir.native();
  while (d.size() > 1 && d.back() == '/') d.pop_back();
  if (d == "/") return !p.empty() && p[0] == '/';
  return p == d || (p.size() > d.size() && p.compare(0, d.size(), d) == 0 && p[d.size()] == '/');
}

void remove_tree_one_fs(const fs::path& path) {
  fs::path abs = fs::absolute(path).lexically_normal();
  if (!abs.has_filename()) abs = abs.parent_path();
  if (abs == abs.root_path()) fail("refusing to remove {}", abs.string());
  UniqueFd top(::open(abs.parent_path().c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!top) {
    if (errno == ENOENT) return;
    fail_errno("cannot open {}", abs.parent_path().string());
  }
  const std::string base = abs.filename().string();
  struct stat st;
  if (::fstatat(top.get(), base.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
    if (errno == ENOENT) return;
    fail_errno("cannot stat {}", abs.string());
  }
  if (!S_ISDIR(st.st_mode)) {
    if (::unlinkat(top.get(), base.c_str(), 0) != 0 && errno != ENOENT) fail_errno("cannot remove {}", abs.string());
    return;
  }
  const dev_t dev = st.st_dev;
  std::vector<Level> stack;
  auto shown = [&](const std::string& leaf) {
    fs::path p = abs;
    for (size_t i = 1; i < stack.size(); ++i) p /= stack[i].name;
    return leaf.empty() ? p.string() : (p / leaf).string();
  };
  struct stat top_st;
  if (::fstat(top.get(), &top_st) != 0) fail_errno("cannot stat {}", abs.parent_path().string());
  stack.push_back({top_st.st_dev, top_st.st_ino, "", {}});  // the parent: never emptied
  auto shown_abs = [&] { return abs.string(); };
  UniqueFd cur = open_to_empty(top.get(), base, st, shown_abs);
  stack.push_back({st.st_dev, st.st_ino, base, list_dir_fd(cur.get(), shown_abs)});
  // Depth first without recursion and with one directory open at a time: a
  // guest-made tree of any depth needs no stack and no fds beyond these.
  while (stack.size() > 1) {
    Level& here = stack.back();
    if (!here.todo.empty()) {
      std::string name = std::move(here.todo.back());
      here.todo.pop_back();
      struct stat e;
      if (::fstatat(cur.get(), name.c_str(), &e, AT_SYMLINK_NOFOLLOW) != 0) {
        if (errno == ENOENT) continue;
        fail_errno("cannot stat {}", shown(name));
      }
      if (e.st_dev != dev) fail("cannot remove {}: another file system is mounted there", shown(name));
      if (!S_ISDIR(e.st_mode)) {
        if (::unlinkat(cur.get(), name.c_str(), 0) != 0 && errno != ENOENT) fail_errno("cannot remove {}", shown(name));
        continue;
      }
      if (stack.size() > kMaxDepth) fail("cannot remove {}: deeper than {} levels", shown(""), kMaxDepth);
      auto shown_sub = [&] { return shown(name); };
      UniqueFd sub = open_to_empty(cur.get(), name, e, shown_sub);
      std::vector<std::string> entries = list_dir_fd(sub.get(), shown_sub);
      cur = std::move(sub);
      stack.push_back({e.st_dev, e.st_ino, std::move(name), std::move(entries)});
      continue;
    }
    // Emptied; a writer still at work may have added entries meanwhile.
    if (std::vector<std::string> more = list_dir_fd(cur.get(), [&] { return shown(""); }); !more.empty()) {
      if (++here.listings > kMaxListings) fail("cannot remove {}: it keeps filling up", shown(""));
      here.todo = std::move(more);
      continue;
    }
    Level done = std::move(stack.back());
    stack.pop_back();
    UniqueFd up;
    int parent = top.get();
    if (stack.size() > 1) {
      // Back up through "..", which must still be the directory we came down
      // from (someone moving the tree meanwhile must not send us elsewhere).
      up = UniqueFd(::openat(cur.get(), "..", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
      struct stat p;
      if (!up || ::fstat(up.get(), &p) != 0) fail_errno("cannot open the parent of {}", shown(done.name));
      if (p.st_dev != stack.back().dev || p.st_ino != stack.back().ino)
        fail("cannot remove {}: it was moved meanwhile", shown(done.name));
      parent = up.get();
    }
    if (::unlinkat(parent, done.name.c_str(), AT_REMOVEDIR) != 0 && errno != ENOENT)
      fail_errno("cannot remove {}", shown(done.name));
    cur = std::move(up);
  }
}

TempDir::TempDir(const fs::path& parent, std::string_view prefix) {
  std::string templ = (parent / prefix).string() + "XXXXXX";
  std::vector<char> buf(templ.begin(), templ.end());
  buf.push_back('\0');
  if (!::mkdtemp(buf.data())) fail_errno("cannot create a temporary directory in {}", parent.string());
  path_ = buf.data();
}

TempDir::~TempDir() {
  if (path_.empty()) return;
  std::error_code ec;
  fs::remove_all(path_, ec);
}

std::optional<std::string> find_in_path(const std::string& name) {
  const char* path = std::getenv("PATH");
  for (const auto& dir : split(path ? path : "/usr/bin:/bin", ':')) {
    fs::path candidate = fs::path(dir.empty() ? "." : dir) / name;
    if (::access(candidate.c_str(), X_OK) == 0) return candidate.string();
  }
  return std::nullopt;
}

uint64_t blocks_in_dir(const fs::path& dir) {
  uint64_t total = 0;
  std::error_code ec;
  for (const auto& file : fs::directory_iterator(dir, ec)) {
    struct stat st;
    if (::lstat(file.path().c_str(), &st) == 0) total += static_cast<uint64_t>(st.st_blocks) * 512;
  }
  return total;
}

}  // namespace kestrel
