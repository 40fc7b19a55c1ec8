#include "assets/cpio.hpp"

#include <archive.h>
#include <archive_entry.h>

#include <memory>

#include "util/error.hpp"

namespace kestrel::assets {

namespace {

struct EntryFree {
  void operator()(archive_entry* e) const { archive_entry_free(e); }
};

}  // namespace

CpioWriter::CpioWriter(int fd, std::string what) : archive_(new_write_archive()), what_(std::move(what)) {
  if (archive_write_set_format_cpio_newc(archive_.get()) != ARCHIVE_OK ||
      archive_write_add_filter_none(archive_.get()) != ARCHIVE_OK ||
      // No padding of the last block: the kernel needs none, and it would
      // only make the file bigger.
      archive_write_set_bytes_in_last_block(archive_.get(), 1) != ARCHIVE_OK ||
      archive_write_open_fd(archive_.get(), fd) != ARCHIVE_OK)
    fail_archive(archive_.get(), fmt::format("cannot write {}", what_));
}

void CpioWriter::add(std::string_view path, unsigned type, unsigned mode, std::string_view data,
                     std::string_view symlink, unsigned rdev_major, unsigned rdev_minor) {
  std::unique_ptr<archive_entry, EntryFree> entry(archive_entry_new());
  if (!entry) fail("cannot write {}: out of memory", what_);
  std::string name(path);
  archive_entry_set_pathname(entry.get(), name.c_str());
  archive_entry_set_filetype(entry.get(), type);
  archive_entry_set_perm(entry.get(), mode);
  archive_entry_set_uid(entry.get(), 0);
  archive_entry_set_gid(entry.get(), 0);
  archive_entry_set_mtime(entry.get(), 0, 0);
  archive_entry_set_ino64(entry.get(), next_inode_++);
  archive_entry_set_nlink(entry.get(), type == AE_IFDIR ? 2 : 1);
  if (type == AE_IFLNK) {
    std::string target(symlink);
    archive_entry_set_symlink(entry.get(), target.c_str());
  }
  if (type == AE_IFCHR) {
    archive_entry_set_rdevmajor(entry.get(), rdev_major);
    archive_entry_set_rdevminor(entry.get(), rdev_minor);
  }
  archive_entry_set_size(entry.get(), static_cast<la_int64_t>(data.size()));
  if (archive_write_header(archive_.get(), entry.get()) != ARCHIVE_OK)
    fail_archive(archive_.get(), fmt::format("cannot write {} into {}", name, what_));
  if (!data.empty()) {
    la_ssize_t written = archive_write_data(archive_.get(), data.data(), data.size());
    if (written < 0 || static_cast<size_t>(written) != data.size())
      fail_archive(archive_.get(), fmt::format("cannot write {} into {}", name, what_));
  }
}

void CpioWriter::add_directory(std::string_view path, unsigned mode) { add(path, AE_IFDIR, mode, {}, {}); }

void CpioWriter::add_file(std::string_view path, std::string_view data, unsigned mode) {
  add(path, AE_IFREG, mode, data, {});
}

void CpioWriter::add_symlink(std::string_view path, std::string_view target) { add(path, AE_IFLNK, 0777, {}, target); }

void CpioWriter::add_char_device(std::string_view path, unsigned major, unsigned minor, unsigned mode) {
  add(path, AE_IFCHR, mode, {}, {}, major, minor);
}

void CpioWriter::finish() {
  if (archive_write_close(archive_.get()) != ARCHIVE_OK)
    fail_archive(archive_.get(), fmt::format("cannot finish {}", what_));
}

}  // namespace kestrel::assets
