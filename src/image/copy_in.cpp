#include "image/copy_in.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <vector>

#include "util/error.hpp"
#include "util/fd.hpp"
#include "util/fs.hpp"
#include "util/io.hpp"

namespace kestrel::image {

namespace fs = std::filesystem;

namespace {

// Deeper source trees than this are refused: each level holds two fds.
constexpr int kMaxDepth = 256;

const char* kind_of(mode_t mode) {
  if (S_ISDIR(mode)) return "a directory";
  if (S_ISREG(mode)) return "a file";
  if (S_ISLNK(mode)) return "a symbolic link";
  return "a special file";
}

// The names in an open directory, sorted (a stable order for messages).
std::vector<std::string> entries_of(int dir_fd, const fs::path& shown) {
  std::vector<std::string> names = list_dir_fd(dir_fd, [&] { return shown.string(); });
  std::ranges::sort(names);
  return names;
}

// Opens (making it if missing) the directory `name` in `parent`, never
// through a link. `to` is its image path, for messages.
UniqueFd open_or_make_dir(int parent, const std::string& name, const std::string& to) {
  if (::mkdirat(parent, name.c_str(), 0755) != 0 && errno != EEXIST)
    fail_errno("files: cannot make {} in the image", to);
  UniqueFd fd(::openat(parent, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (fd) return fd;
  int err = errno;
  struct stat st {};
  if (::fstatat(parent, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISLNK(st.st_mode))
    fail("files: {} is a symbolic link in the image; a copy never goes through one (name the path it points to)", to);
  if (err == ENOTDIR) fail("files: {} is {} in the image, not a directory", to, kind_of(st.st_mode));
  throw sys_error(err, "files: cannot open " + to + " in the image");
}

void set_times(int fd, const struct stat& st) {
  const struct timespec times[2] = {st.st_atim, st.st_mtim};
  ::futimens(fd, times);  // best effort, as cp -a
}

// The content of `src` (open, of stat `st`) into `name` in `parent`: written
// in place if a file is there (no link is followed, nothing else replaced).
void copy_file(int src, const struct stat& st, int parent, const std::string& name, const std::string& to,
               const fs::path& from) {
  struct stat there {};
  if (::fstatat(parent, name.c_str(), &there, AT_SYMLINK_NOFOLLOW) == 0 && !S_ISREG(there.st_mode)) {
    if (S_ISLNK(there.st_mode))
      fail("files: {} is a symbolic link in the image; a copy never goes through one (name the path it points to)", to);
    fail("files: {} is {} in the image; {} would replace it with a file", to, kind_of(there.st_mode), from.string());
  }
  UniqueFd dst(::openat(parent, name.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600));
  if (!dst) fail_errno("files: cannot write {} in the image", to);
  char buf[65536];
  for (;;) {
    ssize_t n = read_some(src, buf);
    if (n < 0) fail_errno("files: cannot read {}", from.string());
    if (n == 0) break;
    if (int err = try_write_all(dst.get(), std::string_view(buf, static_cast<size_t>(n))); err != 0)
      throw sys_error(err, "files: cannot write " + to + " in the image");
  }
  if (::fchmod(dst.get(), st.st_mode & 07777) != 0) fail_errno("files: cannot set the mode of {}", to);
  set_times(dst.get(), st);
}

void copy_link(int src_dir, const std::string& name, int parent, const std::string& to, const fs::path& from) {
  std::string target(4096, '\0');
  ssize_t n = ::readlinkat(src_dir, name.c_str(), target.data(), target.size());
  if (n < 0) fail_errno("files: cannot read the symbolic link {}", from.string());
  if (static_cast<size_t>(n) >= target.size()) fail("files: the symbolic link {} is too long", from.string());
  target.resize(static_cast<size_t>(n));
  struct stat there {};
  if (::fstatat(parent, name.c_str(), &there, AT_SYMLINK_NOFOLLOW) == 0) {
    if (!S_ISLNK(there.st_mode))
      fail("files: {} is {} in the image; {} would replace it with a symbolic link", to, kind_of(there.st_mode),
           from.string());
    if (::unlinkat(parent, name.c_str(), 0) != 0) fail_errno("files: cannot replace {} in the image", to);
  }
  if (::symlinkat(target.c_str(), parent, name.c_str()) != 0) fail_errno("files: cannot make {} in the image", to);
}

void copy_dir(int src, const struct stat& st, int dst, const std::string& to, const fs::path& from, int depth) {
  if (depth > kMaxDepth) fail("files: {} is nested more than {} directories deep", from.string(), kMaxDepth);
  for (const std::string& name : entries_of(src, from)) {
    std::string child_to = to == "/" ? "/" + name : to + "/" + name;
    fs::path child_from = from / name;
    struct stat cst {};
    if (::fstatat(src, name.c_str(), &cst, AT_SYMLINK_NOFOLLOW) != 0)
      fail_errno("files: cannot read {}", child_from.string());
    if (S_ISLNK(cst.st_mode)) {
      copy_link(src, name, dst, child_to, child_from);
    } else if (S_ISREG(cst.st_mode)) {
      UniqueFd in(::openat(src, name.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC));
      if (!in) fail_errno("files: cannot read {}", child_from.string());
      copy_file(in.get(), cst, dst, name, child_to, child_from);
    } else if (S_ISDIR(cst.st_mode)) {
      UniqueFd in(::openat(src, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
      if (!in) fail_errno("files: cannot read {}", child_from.string());
      UniqueFd out = open_or_make_dir(dst, name, child_to);
      copy_dir(in.get(), cst, out.get(), child_to, child_from, depth + 1);
    } else {
      fail("files: {} is a special file (a device, fifo or socket); an image takes files, directories and links",
           child_from.string());
    }
  }
  if (::fchmod(dst, st.st_mode & 07777) != 0) fail_errno("files: cannot set the mode of {}", to);
  set_times(dst, st);
}

}  // namespace

void copy_into_tree(const fs::path& tree, const fs::path& from, const std::string& to) {
  UniqueFd at(::open(tree.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (!at) fail_errno("cannot open the image tree {}", tree.string());
  std::vector<std::string> parts;
  for (const auto& part : fs::path(to).relative_path()) {
    std::string p = part.string();
    if (p.empty() || p == ".") continue;
    if (p == "..") fail("files: image path '{}' must not contain '..'", to);
    parts.push_back(p);
  }
  if (parts.empty()) fail("files: image path '{}' is the root itself: name a path below it", to);
  std::string walked;
  for (size_t i = 0; i + 1 < parts.size(); ++i) {
    walked += "/" + parts[i];
    at = open_or_make_dir(at.get(), parts[i], walked);
  }
  const std::string& leaf = parts.back();

  // The source is followed, as the recipe's digest follows it (never
  // blocking on a fifo put there since the recipe was read).
  UniqueFd in(::open(from.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC));
  if (!in) fail_errno("files: cannot read {}", from.string());
  struct stat st {};
  if (::fstat(in.get(), &st) != 0) fail_errno("files: cannot read {}", from.string());
  if (S_ISREG(st.st_mode)) {
    copy_file(in.get(), st, at.get(), leaf, to, from);
  } else if (S_ISDIR(st.st_mode)) {
    UniqueFd out = open_or_make_dir(at.get(), leaf, to);
    copy_dir(in.get(), st, out.get(), to, from, 0);
  } else {
    fail("files: {} is neither a regular file nor a directory", from.string());
  }
}

}  // namespace kestrel::image
