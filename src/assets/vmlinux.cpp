#include "assets/vmlinux.hpp"

#include <algorithm>
#include <array>
#include <vector>

#include "assets/elf.hpp"
#include "util/error.hpp"

namespace kestrel::assets {

namespace {

// Offsets in the boot header (Documentation/x86/boot.rst).
constexpr size_t kSetupSects = 0x1f1;
constexpr size_t kHeaderMagic = 0x202;
constexpr size_t kProtocolVersion = 0x206;
constexpr size_t kKernelVersion = 0x20e;
constexpr size_t kPayloadOffset = 0x248;
constexpr size_t kPayloadLength = 0x24c;

uint32_t le(std::string_view d, size_t offset, size_t bytes) {
  uint32_t v = 0;
  for (size_t i = 0; i < bytes; ++i) v |= static_cast<uint32_t>(static_cast<unsigned char>(d[offset + i])) << (8 * i);
  return v;
}

// The first word of a version string: "6.1.0-56-amd64 (debian-kernel@…) #1 …".
std::string first_word(std::string_view s) {
  size_t end = 0;
  while (end < s.size() && end < 256 && s[end] > ' ' && s[end] < 0x7f) ++end;
  return std::string(s.substr(0, end));
}

// Buffers the first bytes of the output to check that they are an ELF header
// before passing anything on, so a wrong guess never reaches the sink.
class ElfCheckingSink {
 public:
  ElfCheckingSink(const Sink& sink, std::string_view what) : sink_(sink), what_(what) {}
  void operator()(std::string_view chunk) {
    if (checked_) return sink_(chunk);
    head_.append(chunk);
    if (head_.size() < 64) return;
    check();
  }
  void finish() {
    if (!checked_) check();
  }
  bool passed() const { return checked_; }

 private:
  void check() {
    if (!elf::is_elf64(head_)) fail("{}: the decompressed kernel is not an ELF64 file", what_);
    checked_ = true;
    sink_(head_);
    head_.clear();
  }
  const Sink& sink_;
  std::string_view what_;
  std::string head_;
  bool checked_ = false;
};

}  // namespace

bool is_bzimage(std::string_view d) { return d.size() > kPayloadLength + 4 && d.substr(kHeaderMagic, 4) == "HdrS"; }

std::string bzimage_release(std::string_view d) {
  if (!is_bzimage(d)) return {};
  uint32_t pointer = le(d, kKernelVersion, 2);
  if (pointer == 0 || pointer + 0x200 >= d.size()) return {};
  return first_word(d.substr(pointer + 0x200));
}

namespace {

// The payload as the boot header describes it (boot protocol 2.08+).
std::optional<BzImagePayload> payload_from_header(std::string_view d) {
  if (!is_bzimage(d) || le(d, kProtocolVersion, 2) < 0x208) return std::nullopt;
  uint32_t sects = static_cast<unsigned char>(d[kSetupSects]);
  if (sects == 0) sects = 4;  // as the boot protocol says
  uint64_t start = (uint64_t{sects} + 1) * 512 + le(d, kPayloadOffset, 4);
  uint64_t length = le(d, kPayloadLength, 4);
  if (length <= 4 || start > d.size() || length > d.size() - start) return std::nullopt;
  std::string_view payload = d.substr(start, length);
  Compression c = detect_compression(payload);
  if (c == Compression::kNone) return std::nullopt;
  // The build appends the decompressed size (4 bytes, little-endian) to every
  // payload; gzip's own trailer ends with the same number. Other decompressors
  // would take those 4 bytes for a truncated next stream.
  uint64_t size = le(payload, payload.size() - 4, 4);
  if (c != Compression::kGzip) payload.remove_suffix(4);
  return BzImagePayload{payload, c, size};
}

// Without a usable header: every place where a compressed stream of a format
// we read seems to start, earliest first. (lzma-alone has no magic worth
// scanning for.)
std::vector<BzImagePayload> scan_for_payloads(std::string_view d) {
  static const std::array<std::string_view, 5> magics = {
      std::string_view("\xfd"
                       "7zXZ\0",
                       6),
      std::string_view("\x28\xb5\x2f\xfd", 4), std::string_view("\x1f\x8b\x08", 3),
      std::string_view("\x02\x21\x4c\x18", 4), std::string_view("BZh", 3)};
  constexpr size_t kMaxCandidates = 16;
  std::vector<size_t> starts;
  for (std::string_view magic : magics) {
    size_t found = 0;
    for (size_t at = d.find(magic); at != std::string_view::npos && found < kMaxCandidates;
         at = d.find(magic, at + 1)) {
      if (detect_compression(d.substr(at)) == Compression::kNone) continue;
      starts.push_back(at);
      ++found;
    }
  }
  std::sort(starts.begin(), starts.end());
  std::vector<BzImagePayload> out;
  for (size_t at : starts) out.push_back({d.substr(at), detect_compression(d.substr(at)), std::nullopt});
  return out;
}

}  // namespace

std::optional<BzImagePayload> find_payload(std::string_view bzimage) {
  if (auto payload = payload_from_header(bzimage)) return payload;
  std::vector<BzImagePayload> candidates = scan_for_payloads(bzimage);
  if (candidates.empty()) return std::nullopt;
  return candidates.front();
}

void extract_vmlinux(std::string_view bzimage, const Sink& sink, std::string_view what) {
  std::vector<BzImagePayload> candidates;
  if (auto payload = payload_from_header(bzimage))
    candidates.push_back(*payload);
  else
    candidates = scan_for_payloads(bzimage);
  if (candidates.empty()) fail("{}: no compressed kernel found in it", what);
  std::string last_error;
  for (const BzImagePayload& payload : candidates) {
    ElfCheckingSink checking(sink, what);
    try {
      decompress(
          payload.data, [&](std::string_view chunk) { checking(chunk); },
          fmt::format("the {} kernel in {}", compression_name(payload.compression), what));
      checking.finish();
      return;
    } catch (const Error& e) {
      // Once ELF bytes went out, a later failure is real corruption, not a
      // wrong guess: do not try the next candidate on top of them.
      if (checking.passed()) throw;
      last_error = e.what();
    }
  }
  fail("{}", last_error);
}

std::string vmlinux_release(std::string_view elf) {
  // linux_banner: "Linux version 6.1.0-56-amd64 (debian-kernel@…) (gcc …) #1 SMP …".
  constexpr std::string_view kBanner = "Linux version ";
  for (size_t at = elf.find(kBanner); at != std::string_view::npos; at = elf.find(kBanner, at + 1)) {
    std::string word = first_word(elf.substr(at + kBanner.size()));
    // Skip format strings such as "Linux version %s".
    if (!word.empty() && word[0] >= '0' && word[0] <= '9') return word;
  }
  return {};
}

}  // namespace kestrel::assets
