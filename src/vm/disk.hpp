// Disk files for image runs (docs/images.md): every VM writes to its own
// qcow2 overlay whose backing file is a read-only image or template disk, so
// that no VM ever changes what another one starts from.
#pragma once

#include <filesystem>
#include <string>

namespace kestrel::vm {

// $KESTREL_QEMU_IMG, else qemu-img from PATH. Throws naming the package
// (qemu-utils) when it is missing.
std::string find_qemu_img();

// Creates `overlay`, a qcow2 file whose reads fall through to `backing` (a
// qcow2 file, named by its absolute path) and which takes every write.
// The overlay is created 0600 and replaced if it exists.
void create_overlay(const std::filesystem::path& backing, const std::filesystem::path& overlay);

// Converts a raw disk image to a compact qcow2 file (zero blocks are not stored).
void convert_to_qcow2(const std::filesystem::path& raw, const std::filesystem::path& qcow2);

}  // namespace kestrel::vm
