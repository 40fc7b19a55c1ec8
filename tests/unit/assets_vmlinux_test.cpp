#include <gtest/gtest.h>

#include "assets/archive.hpp"
#include "assets/elf.hpp"
#include "assets/kernel_store.hpp"
#include "assets/vmlinux.hpp"
#include "assets_test_support.hpp"
#include "util/error.hpp"

namespace kestrel::assets {
namespace {

using testing::make_bzimage;
using testing::put_le;

std::string extract(std::string_view bzimage) {
  std::string out;
  extract_vmlinux(
      bzimage, [&](std::string_view chunk) { out.append(chunk); }, "test bzImage");
  return out;
}

TEST(Vmlinux, ExtractsXzPayloadByHeader) {
  std::string vmlinux = testing::make_vmlinux(true, 200000);
  std::string image = make_bzimage(vmlinux, ARCHIVE_FILTER_XZ);
  ASSERT_TRUE(is_bzimage(image));
  EXPECT_EQ(bzimage_release(image), "6.1.0-99-test");
  std::optional<BzImagePayload> payload = find_payload(image);
  ASSERT_TRUE(payload);
  EXPECT_EQ(payload->compression, Compression::kXz);
  EXPECT_EQ(payload->size, vmlinux.size());
  std::string out = extract(image);
  EXPECT_EQ(out, vmlinux);
  EXPECT_TRUE(elf::has_pvh_note(out, "vmlinux"));
  EXPECT_EQ(vmlinux_release(out), "6.1.0-99-test");
}

TEST(Vmlinux, ExtractsOtherCompressionsByHeader) {
  std::string vmlinux = testing::make_vmlinux(true, 5000);
  for (int filter : {ARCHIVE_FILTER_GZIP, ARCHIVE_FILTER_ZSTD, ARCHIVE_FILTER_BZIP2, ARCHIVE_FILTER_LZ4}) {
    std::string compressed;
    try {
      compressed = testing::compress("probe", filter);
    } catch (const std::exception&) {
      continue;  // this libarchive cannot write it
    }
    EXPECT_EQ(extract(make_bzimage(vmlinux, filter)), vmlinux) << "filter " << filter;
  }
}

TEST(Vmlinux, FindsPayloadByMagicWithoutHeader) {
  std::string vmlinux = testing::make_vmlinux(false, 3000);
  // "some bytes + an xz stream", nothing else.
  std::string image = std::string(777, '\x11') + testing::compress(vmlinux, ARCHIVE_FILTER_XZ);
  EXPECT_FALSE(is_bzimage(image));
  EXPECT_EQ(extract(image), vmlinux);
  // A stray gzip magic before the real payload is a wrong guess, not a failure.
  image = std::string("\x1f\x8b\x08garbage") + image;
  EXPECT_EQ(extract(image), vmlinux);
}

TEST(Vmlinux, PayloadThatIsNotElfIsAnError) {
  std::string image = std::string(100, 'x') + testing::compress(std::string(5000, 'A'), ARCHIVE_FILTER_XZ);
  EXPECT_THROW(extract(image), Error);
  EXPECT_THROW(extract("no payload in here"), Error);
}

TEST(Vmlinux, CorruptPayloadIsAnError) {
  std::string image = make_bzimage(testing::make_vmlinux(true, 100000), ARCHIVE_FILTER_XZ);
  image[image.size() - 300 - 4 - 100] ^= 0x55;  // inside the xz stream
  EXPECT_THROW(extract(image), Error);
}

TEST(Archive, DecompressRejectsUncompressedData) {
  EXPECT_THROW(decompress("plain text, not compressed", "test"), Error);
  EXPECT_EQ(decompress_if_compressed("plain", "test"), "plain");
  EXPECT_EQ(decompress_if_compressed(testing::compress("hello", ARCHIVE_FILTER_XZ), "test"), "hello");
}

TEST(Versions, CompareLikePeopleRead) {
  EXPECT_GT(compare_versions("6.1.0-56-amd64", "6.1.0-9-amd64"), 0);
  EXPECT_LT(compare_versions("6.1.0-9-amd64", "6.10.0-1-amd64"), 0);
  EXPECT_EQ(compare_versions("6.1.0-09", "6.1.0-9"), 0);
  EXPECT_GT(compare_versions("6.1.0-56-amd64", "6.1.0-56"), 0);
  EXPECT_LT(compare_versions("5.10.0-30-amd64", "6.1.0-1-amd64"), 0);
}

}  // namespace
}  // namespace kestrel::assets
