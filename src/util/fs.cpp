#include "util/fs.hpp"

#include <fcntl.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <vector>

#include "util/error.hpp"
#include "util/fd.hpp"
#include "util/io.hpp"

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

void link_or_copy(const fs::path& src, const fs::path& dst) {
  // Follow a symlinked program (/bin/sh -> dash): the bay holds the file itself.
  if (::linkat(AT_FDCWD, src.c_str(), AT_FDCWD, dst.c_str(), AT_SYMLINK_FOLLOW) == 0) return;
  UniqueFd in(::open(src.c_str(), O_RDONLY | O_CLOEXEC));
  if (!in) fail_errno("cannot open {}", src.string());
  struct stat st;
  if (::fstat(in.get(), &st) != 0) fail_errno("cannot stat {}", src.string());
  UniqueFd out(::open(dst.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, st.st_mode & 07777));
  if (!out) fail_errno("cannot create {}", dst.string());
  if (::ioctl(out.get(), FICLONE, in.get()) == 0) return;
  off_t offset = 0;
  bool plain = false;
  while (offset < st.st_size && !plain) {
    ssize_t n = ::copy_file_range(in.get(), &offset, out.get(), nullptr, static_cast<size_t>(st.st_size - offset), 0);
    int err = n < 0 ? errno : 0;
    if (err == EINTR) continue;
    if (err == EXDEV || err == ENOSYS || err == EINVAL || err == EOPNOTSUPP) {
      plain = true;  // another file system, older kernels or exotic file systems: copy by hand below
    } else if (err) {
      throw sys_error(err, "cannot copy " + src.string() + " to " + dst.string());
    } else if (n == 0) {
      plain = true;  // nothing copied before the size was reached: read on to the real end
    }
  }
  if (plain) {
    char buf[1 << 16];
    for (;;) {
      ssize_t n = ::pread(in.get(), buf, sizeof buf, offset);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) fail_errno("cannot read {}", src.string());
      if (n == 0) break;
      // A short write is not an error by itself: errno is then stale (it once
      // said "Invalid cross-device link" for a full disk, left over from
      // copy_file_range). try_pwrite_all reports the call that failed.
      if (int err = try_pwrite_all(out.get(), std::string_view(buf, static_cast<size_t>(n)), offset))
        throw sys_error(err, "cannot write " + dst.string());
      offset += n;
    }
  }
  ::fchmod(out.get(), st.st_mode & 07777);
}

}  // namespace kestrel
