// CpioWriter: an uncompressed "newc" cpio archive, the format the kernel
// unpacks as initramfs. Entries are written with owner root, mtime 0 and
// sequential inode numbers, so equal inputs give byte-identical archives.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "assets/archive.hpp"

namespace kestrel::assets {

class CpioWriter {
 public:
  // Writes to fd (not owned); `what` names the output in errors.
  CpioWriter(int fd, std::string what);

  // Paths are relative to the archive root, without a leading '/'.
  void add_directory(std::string_view path, unsigned mode = 0755);
  void add_file(std::string_view path, std::string_view data, unsigned mode = 0644);
  void add_symlink(std::string_view path, std::string_view target);
  void add_char_device(std::string_view path, unsigned major, unsigned minor, unsigned mode = 0600);
  // Writes the trailer; nothing may be added afterwards.
  void finish();

 private:
  void add(std::string_view path, unsigned type, unsigned mode, std::string_view data, std::string_view symlink,
           unsigned rdev_major = 0, unsigned rdev_minor = 0);

  WriteArchive archive_;
  std::string what_;
  int64_t next_inode_ = 1;
};

}  // namespace kestrel::assets
