#include "assets/deb.hpp"

#include <archive.h>
#include <archive_entry.h>

#include "util/error.hpp"

namespace kestrel::assets {

namespace {

// libarchive read callback for the inner archive: hands over the outer
// archive's current member block by block, without copying.
la_ssize_t read_member(archive* inner, void* client_data, const void** buffer) {
  auto* outer = static_cast<archive*>(client_data);
  size_t size = 0;
  la_int64_t offset = 0;
  int r = archive_read_data_block(outer, buffer, &size, &offset);
  if (r == ARCHIVE_EOF) return 0;
  if (r != ARCHIVE_OK) {
    const char* message = archive_error_string(outer);
    archive_set_error(inner, archive_errno(outer), "%s", message ? message : "read error");
    return -1;
  }
  return static_cast<la_ssize_t>(size);
}

}  // namespace

DebReader::DebReader(const std::filesystem::path& deb) : what_(deb.string()) {
  outer_ = new_read_archive();
  archive_read_support_format_ar(outer_.get());
  if (archive_read_open_filename(outer_.get(), deb.c_str(), 1 << 20) != ARCHIVE_OK)
    fail_archive(outer_.get(), fmt::format("cannot open {}", what_));
  archive_entry* entry = nullptr;
  for (;;) {
    int r = archive_read_next_header(outer_.get(), &entry);
    if (r == ARCHIVE_EOF) fail("{}: not a Debian package (no data.tar member)", what_);
    if (r != ARCHIVE_OK) fail_archive(outer_.get(), fmt::format("cannot read {}", what_));
    const char* name = archive_entry_pathname(entry);
    if (name && std::string_view(name).starts_with("data.tar")) break;
  }
  inner_ = new_read_archive();
  archive_read_support_format_tar(inner_.get());
  archive_read_support_filter_all(inner_.get());
  if (archive_read_open(inner_.get(), outer_.get(), nullptr, read_member, nullptr) != ARCHIVE_OK)
    fail_archive(inner_.get(), fmt::format("cannot read the data of {}", what_));
}

std::optional<DebReader::Entry> DebReader::next() {
  archive_entry* entry = nullptr;
  int r = archive_read_next_header(inner_.get(), &entry);
  if (r == ARCHIVE_EOF) return std::nullopt;
  if (r != ARCHIVE_OK && r != ARCHIVE_WARN)
    fail_archive(inner_.get(), fmt::format("cannot read the data of {}", what_));
  Entry e;
  const char* name = archive_entry_pathname(entry);
  std::string_view path = name ? name : "";
  while (path.starts_with("./")) path.remove_prefix(2);
  while (path.starts_with("/")) path.remove_prefix(1);
  e.path = path;
  e.size = archive_entry_size(entry);
  e.regular = archive_entry_filetype(entry) == AE_IFREG;
  entry_size_ = e.size;
  return e;
}

std::string DebReader::read() {
  std::string out;
  if (entry_size_ > 0) out.reserve(static_cast<size_t>(entry_size_));
  for (;;) {
    const void* block = nullptr;
    size_t size = 0;
    la_int64_t offset = 0;
    int r = archive_read_data_block(inner_.get(), &block, &size, &offset);
    if (r == ARCHIVE_EOF) return out;
    if (r != ARCHIVE_OK) fail_archive(inner_.get(), fmt::format("cannot read the data of {}", what_));
    // tar entries are not sparse here, but honour offsets anyway.
    if (static_cast<size_t>(offset) > out.size()) out.resize(static_cast<size_t>(offset));
    out.append(static_cast<const char*>(block), size);
  }
}

}  // namespace kestrel::assets
