// Just enough ELF64 (little-endian) to read kernel modules, check a vmlinux
// for the Xen PVH entry note and tell static executables from dynamic ones.
// Every offset is bounds-checked: inputs come from downloads and user files.
#pragma once

#include <optional>
#include <string_view>

namespace kestrel::assets::elf {

// True if data starts with the ELF magic, class ELF64, little-endian.
bool is_elf64(std::string_view data);

// The contents of the section called `name`, nullopt if there is none (or it
// occupies no file space). Throws Error naming `what` if the headers are
// malformed.
std::optional<std::string_view> section(std::string_view data, std::string_view name, std::string_view what);

// True if a PT_NOTE segment holds a "Xen" note of type
// XEN_ELFNOTE_PHYS32_ENTRY (18): the 32-bit PVH entry QEMU's -kernel uses.
bool has_pvh_note(std::string_view data, std::string_view what);

// True if the program headers include PT_INTERP (a dynamically linked
// executable). Throws if data is not a well-formed ELF64 file.
bool has_interpreter(std::string_view data, std::string_view what);

}  // namespace kestrel::assets::elf
