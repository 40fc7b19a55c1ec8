// bzImage → vmlinux: a bzImage is real-mode setup code followed by a small
// decompressor and the compressed ELF kernel (its "payload"). QEMU boots an
// uncompressed ELF vmlinux with a Xen PVH note directly (-kernel, PVH entry),
// which skips both the BIOS path and the slow in-guest decompression.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "assets/archive.hpp"

namespace kestrel::assets {

struct BzImagePayload {
  std::string_view data;  // the compressed stream, exactly
  Compression compression = Compression::kNone;
  std::optional<uint64_t> size;  // decompressed size, when the image records it
};

// True if data carries the x86 boot protocol header ("HdrS" at 0x202).
bool is_bzimage(std::string_view data);

// The release the image names in its header ("6.1.0-56-amd64"), or "".
std::string bzimage_release(std::string_view data);

// Locates the compressed kernel: by the boot header's payload fields (boot
// protocol 2.08+), else by scanning for a compression magic. nullopt if none.
std::optional<BzImagePayload> find_payload(std::string_view bzimage);

// Decompresses the kernel in a bzImage into sink. Throws Error naming `what`
// if no payload is found or it does not decompress to an ELF file.
void extract_vmlinux(std::string_view bzimage, const Sink& sink, std::string_view what);

// The release in an ELF vmlinux's "Linux version …" banner, or "".
std::string vmlinux_release(std::string_view elf);

}  // namespace kestrel::assets
