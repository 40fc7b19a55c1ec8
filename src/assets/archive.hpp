// libarchive, wrapped: owners for archive handles, errors as kestrel::Error,
// and decompression of single streams (xz, gzip, zstd, lz4, bzip2, lzma)
// through libarchive's "raw" format, which is how kestrel reads compressed
// kernels and modules without linking liblzma & co. directly.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <string_view>

struct archive;

namespace kestrel::assets {

struct ArchiveReadFree {
  void operator()(archive* a) const;
};
struct ArchiveWriteFree {
  void operator()(archive* a) const;
};
using ReadArchive = std::unique_ptr<archive, ArchiveReadFree>;
using WriteArchive = std::unique_ptr<archive, ArchiveWriteFree>;

ReadArchive new_read_archive();
WriteArchive new_write_archive();

// Throws "<what>: <libarchive's message>".
[[noreturn]] void fail_archive(archive* a, std::string_view what);

enum class Compression { kNone, kGzip, kXz, kZstd, kLz4, kBzip2, kLzma, kLzo };

// Recognizes a compressed stream by its magic bytes at the start of data.
Compression detect_compression(std::string_view data);
const char* compression_name(Compression c);

// Receives decompressed data in pieces.
using Sink = std::function<void(std::string_view chunk)>;

// Decompresses one compressed stream (any of the formats above) into sink.
// Throws Error naming `what` if the data is corrupt or not compressed in a
// format libarchive knows.
void decompress(std::string_view input, const Sink& sink, std::string_view what);
std::string decompress(std::string_view input, std::string_view what);

// Returns data itself if it is not compressed, else its decompressed bytes.
std::string decompress_if_compressed(std::string data, std::string_view what);

}  // namespace kestrel::assets
