#include "assets/elf.hpp"

#include <cstdint>
#include <cstring>
#include <limits>

#include "util/error.hpp"

namespace kestrel::assets::elf {

namespace {

constexpr uint32_t kPtInterp = 3;
constexpr uint32_t kPtNote = 4;
constexpr uint32_t kShtNobits = 8;
constexpr uint16_t kShnXindex = 0xffff;
constexpr uint32_t kXenElfnotePhys32Entry = 18;

constexpr size_t kEhdrSize = 64;
constexpr size_t kPhdrSize = 56;
constexpr size_t kShdrSize = 64;

// Little-endian field reads at a checked offset. The host is x86-64, but we
// decode explicitly so the parser never depends on alignment or host order.
template <typename T>
T read_le(std::string_view data, uint64_t offset, std::string_view what) {
  if (offset > data.size() || data.size() - offset < sizeof(T))
    fail("{}: malformed ELF file: offset {} is past its end ({} bytes)", what, offset, data.size());
  T value = 0;
  for (size_t i = 0; i < sizeof(T); ++i)
    value |= static_cast<T>(static_cast<T>(static_cast<unsigned char>(data[offset + i])) << (8 * i));
  return value;
}

// A [offset, offset + size) range that must lie inside data.
std::string_view slice(std::string_view data, uint64_t offset, uint64_t size, std::string_view what) {
  if (offset > data.size() || size > data.size() - offset)
    fail("{}: malformed ELF file: range {}+{} is outside its {} bytes", what, offset, size, data.size());
  return data.substr(offset, size);
}

struct Table {
  uint64_t offset = 0;
  uint64_t count = 0;
  uint64_t entry_size = 0;
};

void check_elf64(std::string_view data, std::string_view what) {
  if (!is_elf64(data)) fail("{}: not a 64-bit little-endian ELF file", what);
  if (data.size() < kEhdrSize) fail("{}: malformed ELF file: truncated header", what);
}

Table program_headers(std::string_view data, std::string_view what) {
  Table t{read_le<uint64_t>(data, 32, what), read_le<uint16_t>(data, 56, what), read_le<uint16_t>(data, 54, what)};
  if (t.count != 0 && t.entry_size < kPhdrSize)
    fail("{}: malformed ELF file: program header size {}", what, t.entry_size);
  slice(data, t.offset, t.count * t.entry_size, what);
  return t;
}

Table section_headers(std::string_view data, std::string_view what) {
  Table t{read_le<uint64_t>(data, 40, what), read_le<uint16_t>(data, 60, what), read_le<uint16_t>(data, 58, what)};
  if (t.offset == 0) return {};
  if (t.entry_size < kShdrSize) fail("{}: malformed ELF file: section header size {}", what, t.entry_size);
  // Extended numbering: more than 0xff00 sections put the count in sh_size of
  // section 0.
  if (t.count == 0) t.count = read_le<uint64_t>(data, t.offset + 32, what);
  if (t.count > std::numeric_limits<uint32_t>::max()) fail("{}: malformed ELF file: {} sections", what, t.count);
  slice(data, t.offset, t.count * t.entry_size, what);
  return t;
}

std::string_view c_string_at(std::string_view table, uint64_t offset) {
  if (offset >= table.size()) return {};
  std::string_view rest = table.substr(offset);
  size_t end = rest.find('\0');
  return end == std::string_view::npos ? std::string_view() : rest.substr(0, end);
}

uint64_t align4(uint64_t n) { return (n + 3) & ~uint64_t{3}; }

}  // namespace

bool is_elf64(std::string_view data) {
  return data.size() >= 16 &&
         data.substr(0, 4) ==
             "\x7f"
             "ELF" &&
         data[4] == 2 /* ELFCLASS64 */ && data[5] == 1 /* ELFDATA2LSB */;
}

std::optional<std::string_view> section(std::string_view data, std::string_view name, std::string_view what) {
  check_elf64(data, what);
  Table shdrs = section_headers(data, what);
  if (shdrs.count == 0) return std::nullopt;
  uint64_t names_index = read_le<uint16_t>(data, 62, what);
  if (names_index == kShnXindex) names_index = read_le<uint32_t>(data, shdrs.offset + 40, what);
  if (names_index >= shdrs.count) fail("{}: malformed ELF file: bad section name table index", what);
  uint64_t names_header = shdrs.offset + names_index * shdrs.entry_size;
  std::string_view names = slice(data, read_le<uint64_t>(data, names_header + 24, what),
                                 read_le<uint64_t>(data, names_header + 32, what), what);
  for (uint64_t i = 0; i < shdrs.count; ++i) {
    uint64_t header = shdrs.offset + i * shdrs.entry_size;
    if (c_string_at(names, read_le<uint32_t>(data, header, what)) != name) continue;
    if (read_le<uint32_t>(data, header + 4, what) == kShtNobits) return std::nullopt;
    return slice(data, read_le<uint64_t>(data, header + 24, what), read_le<uint64_t>(data, header + 32, what), what);
  }
  return std::nullopt;
}

bool has_pvh_note(std::string_view data, std::string_view what) {
  check_elf64(data, what);
  Table phdrs = program_headers(data, what);
  for (uint64_t i = 0; i < phdrs.count; ++i) {
    uint64_t header = phdrs.offset + i * phdrs.entry_size;
    if (read_le<uint32_t>(data, header, what) != kPtNote) continue;
    std::string_view notes =
        slice(data, read_le<uint64_t>(data, header + 8, what), read_le<uint64_t>(data, header + 32, what), what);
    // Each note: namesz, descsz, type, then name and desc, each padded to 4.
    uint64_t pos = 0;
    while (notes.size() - pos >= 12) {
      uint64_t name_size = read_le<uint32_t>(notes, pos, what);
      uint64_t desc_size = read_le<uint32_t>(notes, pos + 4, what);
      uint32_t type = read_le<uint32_t>(notes, pos + 8, what);
      uint64_t name_at = pos + 12;
      uint64_t next = name_at + align4(name_size) + align4(desc_size);
      if (next > notes.size()) break;  // a truncated note ends the segment's list
      std::string_view note_name = notes.substr(name_at, name_size);
      if (type == kXenElfnotePhys32Entry && (note_name == std::string_view("Xen\0", 4) || note_name == "Xen"))
        return true;
      pos = next;
    }
  }
  return false;
}

bool has_interpreter(std::string_view data, std::string_view what) {
  check_elf64(data, what);
  Table phdrs = program_headers(data, what);
  for (uint64_t i = 0; i < phdrs.count; ++i) {
    if (read_le<uint32_t>(data, phdrs.offset + i * phdrs.entry_size, what) == kPtInterp) return true;
  }
  return false;
}

}  // namespace kestrel::assets::elf
