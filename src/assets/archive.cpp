#include "assets/archive.hpp"

#include <archive.h>
#include <archive_entry.h>

#include "util/error.hpp"

namespace kestrel::assets {

void ArchiveReadFree::operator()(archive* a) const { archive_read_free(a); }
void ArchiveWriteFree::operator()(archive* a) const { archive_write_free(a); }

ReadArchive new_read_archive() {
  ReadArchive a(archive_read_new());
  if (!a) fail("cannot create a libarchive reader: out of memory");
  return a;
}

WriteArchive new_write_archive() {
  WriteArchive a(archive_write_new());
  if (!a) fail("cannot create a libarchive writer: out of memory");
  return a;
}

void fail_archive(archive* a, std::string_view what) {
  const char* message = a ? archive_error_string(a) : nullptr;
  fail("{}: {}", what, message ? message : "unknown libarchive error");
}

Compression detect_compression(std::string_view d) {
  auto starts = [&](std::string_view magic) { return d.substr(0, magic.size()) == magic; };
  if (starts(std::string_view("\xfd"
                              "7zXZ\0",
                              6)))
    return Compression::kXz;
  if (starts("\x28\xb5\x2f\xfd")) return Compression::kZstd;
  if (starts("\x1f\x8b")) return Compression::kGzip;
  if (starts("\x02\x21\x4c\x18") || starts("\x04\x22\x4d\x18")) return Compression::kLz4;
  if (starts("BZh") && d.size() >= 10 && d.substr(4, 6) == "1AY&SY") return Compression::kBzip2;
  if (starts("\x89LZO\0")) return Compression::kLzo;
  // lzma-alone has no magic; the kernel writes properties 0x5d and a 64 MiB
  // (or smaller power of two) dictionary. Only trusted where a header says so.
  if (starts(std::string_view("\x5d\x00\x00", 3))) return Compression::kLzma;
  return Compression::kNone;
}

const char* compression_name(Compression c) {
  switch (c) {
    case Compression::kNone:
      return "uncompressed";
    case Compression::kGzip:
      return "gzip";
    case Compression::kXz:
      return "xz";
    case Compression::kZstd:
      return "zstd";
    case Compression::kLz4:
      return "lz4";
    case Compression::kBzip2:
      return "bzip2";
    case Compression::kLzma:
      return "lzma";
    case Compression::kLzo:
      return "lzo";
  }
  return "unknown";
}

void decompress(std::string_view input, const Sink& sink, std::string_view what) {
  ReadArchive a = new_read_archive();
  archive_read_support_filter_all(a.get());
  archive_read_support_format_raw(a.get());
  if (archive_read_open_memory(a.get(), input.data(), input.size()) != ARCHIVE_OK)
    fail_archive(a.get(), fmt::format("cannot decompress {}", what));
  archive_entry* entry = nullptr;
  int r = archive_read_next_header(a.get(), &entry);
  if (r == ARCHIVE_EOF) return;  // an empty stream
  if (r != ARCHIVE_OK) fail_archive(a.get(), fmt::format("cannot decompress {}", what));
  // The raw format happily passes through data no filter recognized; that is
  // not a success for us. Filter 0 is the one next to the format.
  if (archive_filter_count(a.get()) < 2 || archive_filter_code(a.get(), 0) == ARCHIVE_FILTER_NONE)
    fail("cannot decompress {}: not in a compression format libarchive can read", what);
  for (;;) {
    const void* block = nullptr;
    size_t size = 0;
    la_int64_t offset = 0;
    r = archive_read_data_block(a.get(), &block, &size, &offset);
    if (r == ARCHIVE_EOF) return;
    if (r != ARCHIVE_OK) fail_archive(a.get(), fmt::format("cannot decompress {}", what));
    sink(std::string_view(static_cast<const char*>(block), size));
  }
}

std::string decompress(std::string_view input, std::string_view what) {
  std::string out;
  out.reserve(input.size() * 3);
  decompress(
      input, [&](std::string_view chunk) { out.append(chunk); }, what);
  return out;
}

std::string decompress_if_compressed(std::string data, std::string_view what) {
  if (detect_compression(data) == Compression::kNone) return data;
  return decompress(data, what);
}

}  // namespace kestrel::assets
