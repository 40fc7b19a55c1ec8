// DebReader: streams the files of a Debian package's data.tar.* without
// unpacking it. A .deb is an `ar` archive; its data.tar.{xz,zst,gz} member is
// read as a nested archive straight from the outer one, so neither the
// compressed member (~70 MB for a kernel) nor the tar (~400 MB) is ever held
// in memory or written to disk.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>

#include "assets/archive.hpp"

namespace kestrel::assets {

class DebReader {
 public:
  struct Entry {
    std::string path;  // as in the package, without "./": "boot/vmlinuz-6.1.0-56-amd64"
    int64_t size = 0;
    bool regular = false;  // a regular file (not a directory, link, …)
  };

  // Opens the package and positions on its data.tar member. Throws Error if it
  // is not a .deb.
  explicit DebReader(const std::filesystem::path& deb);
  DebReader(const DebReader&) = delete;
  DebReader& operator=(const DebReader&) = delete;

  // The next file of data.tar, or nullopt at its end. Skips whatever of the
  // previous entry was not read.
  std::optional<Entry> next();
  // The current entry's contents (call at most once per entry).
  std::string read();

 private:
  std::string what_;   // the package's path, for errors
  ReadArchive outer_;  // the ar archive
  ReadArchive inner_;  // data.tar.*, fed from outer_'s current member
  int64_t entry_size_ = 0;
};

}  // namespace kestrel::assets
