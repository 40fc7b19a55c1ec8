// Helpers for the assets tests: synthetic ELF files (modules with .modinfo,
// kernels with a PVH note), compression through libarchive, temp dirs and
// environment overrides.
#pragma once

#include <archive.h>
#include <archive_entry.h>
#include <stdlib.h>

#include <cstdint>
#include <filesystem>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace kestrel::assets::testing {

inline void put_le(std::string& s, size_t offset, uint64_t value, size_t bytes) {
  if (s.size() < offset + bytes) s.resize(offset + bytes);
  for (size_t i = 0; i < bytes; ++i) s[offset + i] = static_cast<char>((value >> (8 * i)) & 0xff);
}

struct ElfSection {
  std::string name;
  std::string data;
  uint32_t type = 1;  // SHT_PROGBITS
};
struct ElfSegment {
  uint32_t type;  // PT_NOTE = 4, PT_INTERP = 3, PT_LOAD = 1
  std::string data;
};

// A minimal ELF64 little-endian file: header, program headers, blobs,
// .shstrtab and section headers.
inline std::string make_elf(const std::vector<ElfSection>& sections, const std::vector<ElfSegment>& segments = {},
                            uint16_t type = 1 /* ET_REL */) {
  std::string out(64, '\0');
  out.replace(0, 4,
              "\x7f"
              "ELF");
  out[4] = 2;  // ELFCLASS64
  out[5] = 1;  // little-endian
  out[6] = 1;  // EV_CURRENT
  put_le(out, 16, type, 2);
  put_le(out, 18, 62, 2);  // EM_X86_64
  put_le(out, 20, 1, 4);
  put_le(out, 52, 64, 2);
  size_t phoff = segments.empty() ? 0 : 64;
  out.resize(64 + segments.size() * 56);
  std::vector<std::pair<size_t, size_t>> segment_at;
  for (const ElfSegment& s : segments) {
    segment_at.emplace_back(out.size(), s.data.size());
    out += s.data;
    while (out.size() % 8) out += '\0';
  }
  for (size_t i = 0; i < segments.size(); ++i) {
    size_t h = phoff + i * 56;
    put_le(out, h, segments[i].type, 4);
    put_le(out, h + 8, segment_at[i].first, 8);
    put_le(out, h + 32, segment_at[i].second, 8);
    put_le(out, h + 40, segment_at[i].second, 8);
  }
  put_le(out, 32, phoff, 8);
  put_le(out, 54, 56, 2);
  put_le(out, 56, segments.size(), 2);

  std::string names(1, '\0');
  std::vector<std::pair<size_t, size_t>> section_at;
  std::vector<size_t> name_at;
  for (const ElfSection& s : sections) {
    name_at.push_back(names.size());
    names += s.name + '\0';
    section_at.emplace_back(out.size(), s.data.size());
    out += s.data;
  }
  size_t shstrtab_name = names.size();
  names += ".shstrtab";
  names += '\0';
  size_t names_at = out.size();
  out += names;
  while (out.size() % 8) out += '\0';
  size_t shoff = out.size();
  size_t count = sections.size() + 2;  // null section, ours, .shstrtab
  out.resize(shoff + count * 64);
  for (size_t i = 0; i < sections.size(); ++i) {
    size_t h = shoff + (i + 1) * 64;
    put_le(out, h, name_at[i], 4);
    put_le(out, h + 4, sections[i].type, 4);
    put_le(out, h + 24, section_at[i].first, 8);
    put_le(out, h + 32, section_at[i].second, 8);
  }
  size_t h = shoff + (count - 1) * 64;
  put_le(out, h, shstrtab_name, 4);
  put_le(out, h + 4, 3, 4);  // SHT_STRTAB
  put_le(out, h + 24, names_at, 8);
  put_le(out, h + 32, names.size(), 8);
  put_le(out, 40, shoff, 8);
  put_le(out, 58, 64, 2);
  put_le(out, 60, count, 2);
  put_le(out, 62, count - 1, 2);
  return out;
}

// A kernel module: .modinfo with the given entries, plus some code bytes.
inline std::string make_module(const std::string& name, const std::vector<std::string>& depends,
                               bool with_name = true) {
  std::string modinfo = "license=GPL";
  modinfo += '\0';
  if (with_name) {
    modinfo += "name=" + name;
    modinfo += '\0';
  }
  std::string deps;
  for (const std::string& d : depends) deps += (deps.empty() ? "" : ",") + d;
  modinfo += "depends=" + deps;
  modinfo += std::string(3, '\0');  // padding, as in real modules
  modinfo += "vermagic=6.1.0-test SMP mod_unload modversions ";
  modinfo += '\0';
  return make_elf({{".text", std::string(64, '\x90')}, {".modinfo", modinfo}});
}

// An ELF kernel with (or without) the Xen PVH entry note.
inline std::string make_vmlinux(bool pvh, size_t padding = 4096) {
  std::string note;
  auto add_note = [&](std::string_view name, uint32_t type, std::string_view desc) {
    std::string n(12, '\0');
    put_le(n, 0, name.size(), 4);
    put_le(n, 4, desc.size(), 4);
    put_le(n, 8, type, 4);
    n += name;
    while (n.size() % 4) n += '\0';
    n += desc;
    while (n.size() % 4) n += '\0';
    note += n;
  };
  add_note(std::string_view("GNU\0", 4), 3, "buildid-bytes-here!!");
  if (pvh) add_note(std::string_view("Xen\0", 4), 18, std::string("\x00\x10\x00\x01", 4));
  std::string banner = "Linux version 6.1.0-99-test (someone@example) #1 SMP";
  banner += '\0';
  return make_elf({{".text", std::string(padding, '\xcc')}, {".rodata", banner}},
                  {{1, std::string(16, '\0')}, {4, note}}, 2 /* ET_EXEC */);
}

// Compresses data into one stream with a libarchive filter
// (ARCHIVE_FILTER_XZ, _GZIP, _ZSTD, ...).
inline std::string compress(std::string_view data, int filter) {
  struct archive* a = archive_write_new();
  std::string out;
  archive_write_set_format_raw(a);
  if (archive_write_add_filter(a, filter) != ARCHIVE_OK) throw std::runtime_error(archive_error_string(a));
  archive_write_set_bytes_per_block(a, 0);
  auto write_cb = [](struct archive*, void* client, const void* buffer, size_t length) -> la_ssize_t {
    static_cast<std::string*>(client)->append(static_cast<const char*>(buffer), length);
    return static_cast<la_ssize_t>(length);
  };
  if (archive_write_open(a, &out, nullptr, write_cb, nullptr) != ARCHIVE_OK)
    throw std::runtime_error(archive_error_string(a));
  struct archive_entry* e = archive_entry_new();
  archive_entry_set_pathname(e, "data");
  archive_entry_set_filetype(e, AE_IFREG);
  archive_entry_set_size(e, static_cast<la_int64_t>(data.size()));
  archive_write_header(a, e);
  archive_write_data(a, data.data(), data.size());
  archive_entry_free(e);
  archive_write_close(a);
  archive_write_free(a);
  return out;
}

// A bzImage as the kernel build lays it out: boot sector and setup (3 setup
// sectors here), then the protected-mode part: a fake decompressor followed
// by the payload (compressed vmlinux + its 4-byte size), then more code.
inline std::string make_bzimage(const std::string& vmlinux, int filter, bool header = true) {
  std::string image(4 * 512, '\0');
  std::string payload = compress(vmlinux, filter);
  put_le(payload, payload.size(), vmlinux.size(), 4);
  std::string decompressor(1000, '\xe8');
  if (header) {
    image[0x1f1] = 3;
    image.replace(0x202, 4, "HdrS");
    put_le(image, 0x206, 0x020f, 2);
    put_le(image, 0x20e, 0x100, 2);  // version string at 0x300
    std::string version = "6.1.0-99-test (someone@example) #1 SMP";
    image.replace(0x300, version.size(), version);
    put_le(image, 0x248, decompressor.size(), 4);
    put_le(image, 0x24c, payload.size(), 4);
  }
  return image + decompressor + payload + std::string(300, '\xc3');
}

// Sets an environment variable for the lifetime of the object.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const std::string& value) : name_(name) {
    if (const char* old = std::getenv(name)) old_ = old;
    ::setenv(name, value.c_str(), 1);
  }
  ~ScopedEnv() {
    if (old_)
      ::setenv(name_, old_->c_str(), 1);
    else
      ::unsetenv(name_);
  }
  ScopedEnv(const ScopedEnv&) = delete;
  ScopedEnv& operator=(const ScopedEnv&) = delete;

 private:
  const char* name_;
  std::optional<std::string> old_;
};

}  // namespace kestrel::assets::testing
