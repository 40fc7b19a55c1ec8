#include <gtest/gtest.h>

#include <filesystem>

#include "assets/elf.hpp"
#include "assets/modinfo.hpp"
#include "assets_test_support.hpp"
#include "util/error.hpp"
#include "util/fs.hpp"

namespace kestrel::assets {
namespace {

using testing::make_elf;
using testing::make_module;

TEST(ModInfo, ReadsNameAndDependsFromSyntheticModule) {
  ModInfo info = parse_modinfo(make_module("9pnet_virtio", {"9pnet", "virtio-ring", "virtio"}), "9pnet_virtio.ko");
  EXPECT_EQ(info.name, "9pnet_virtio");
  EXPECT_EQ(info.depends, (std::vector<std::string>{"9pnet", "virtio_ring", "virtio"}));
}

TEST(ModInfo, EmptyDependsMeansNone) {
  ModInfo info = parse_modinfo(make_module("virtio", {}), "virtio.ko");
  EXPECT_TRUE(info.depends.empty());
}

TEST(ModInfo, NameFallsBackToTheFileName) {
  ModInfo info = parse_modinfo(make_module("ignored", {"a"}, /*with_name=*/false), "dir/virtio-rng.ko.xz");
  EXPECT_EQ(info.name, "virtio_rng");
  EXPECT_EQ(info.depends, std::vector<std::string>{"a"});
  // No .modinfo at all: still named after the file.
  EXPECT_EQ(parse_modinfo(make_elf({{".text", "x"}}), "foo-bar.ko").name, "foo_bar");
}

TEST(ModInfo, FileNames) {
  EXPECT_TRUE(is_module_file("virtio-rng.ko"));
  EXPECT_TRUE(is_module_file("ext4.ko.xz"));
  EXPECT_TRUE(is_module_file("ext4.ko.zst"));
  EXPECT_TRUE(is_module_file("ext4.ko.gz"));
  EXPECT_FALSE(is_module_file(".ko"));
  EXPECT_FALSE(is_module_file("modules.order"));
  EXPECT_FALSE(is_module_file("ext4.ko.bak"));
  EXPECT_EQ(module_name_from_file("kernel/drivers/char/hw_random/virtio-rng.ko.zst"), "virtio_rng");
  EXPECT_EQ(normalize_module_name("snd-hda-intel"), "snd_hda_intel");
}

TEST(ModInfo, ModulesBuiltin) {
  auto names = parse_modules_builtin("kernel/fs/ext4/ext4.ko\nkernel/drivers/virtio/virtio-mmio.ko\n\n");
  EXPECT_EQ(names.size(), 2u);
  EXPECT_TRUE(names.contains("ext4"));
  EXPECT_TRUE(names.contains("virtio_mmio"));
}

TEST(ModInfo, RejectsNonElf) { EXPECT_THROW(parse_modinfo("not an elf file at all, just text", "x.ko"), Error); }

// Every truncation and a sweep of single-byte corruptions of a valid module
// must end in a clean Error or a result, never a crash (run under ASan in CI).
TEST(ModInfo, SurvivesTruncationAndCorruption) {
  std::string module = make_module("virtio_pci", {"virtio", "virtio_ring"});
  for (size_t n = 0; n < module.size(); ++n) {
    try {
      parse_modinfo(std::string_view(module).substr(0, n), "t.ko");
    } catch (const Error&) {
    }
  }
  for (size_t i = 0; i < module.size() && i < 512; ++i) {
    for (unsigned char value : {0x00, 0x7f, 0xff}) {
      std::string bad = module;
      bad[i] = static_cast<char>(value);
      try {
        parse_modinfo(bad, "t.ko");
        (void)elf::has_pvh_note(bad, "t.ko");
      } catch (const Error&) {
      }
    }
  }
}

TEST(Elf, PvhNoteAndInterpreter) {
  EXPECT_TRUE(elf::has_pvh_note(testing::make_vmlinux(true), "vmlinux"));
  EXPECT_FALSE(elf::has_pvh_note(testing::make_vmlinux(false), "vmlinux"));
  std::string dynamic = make_elf({{".text", "x"}}, {{3, "/lib64/ld-linux-x86-64.so.2"}}, 2);
  EXPECT_TRUE(elf::has_interpreter(dynamic, "dyn"));
  EXPECT_FALSE(elf::has_interpreter(testing::make_vmlinux(true), "static"));
  EXPECT_THROW(elf::has_interpreter("#!/bin/sh\n", "script"), Error);
}

// A module's stand-in made by the compiler (tests/unit/fixtures): a real
// object file, with the sections, symbols and relocations a compiler emits.
TEST(ModInfo, ModuleMadeByTheCompiler) {
  std::filesystem::path module = KESTREL_MODULE_FIXTURE;
  ModInfo info = parse_modinfo(read_module_file(module), "9pnet_virtio.ko");
  EXPECT_EQ(info.name, "9pnet_virtio");
  EXPECT_EQ(info.depends, (std::vector<std::string>{"9pnet", "virtio_ring", "virtio"}));
}

}  // namespace
}  // namespace kestrel::assets
