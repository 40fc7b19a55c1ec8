#include "assets/kernel_config.hpp"

#include <gtest/gtest.h>

#include "assets/modules.hpp"
#include "assets_test_support.hpp"
#include "util/error.hpp"
#include "util/fs.hpp"

namespace kestrel::assets {
namespace {

namespace fs = std::filesystem;
using testing::make_module;

// The lines of a .config that matter here, as Debian's cloud kernel has them.
constexpr std::string_view kCloudConfig =
    "#\n# Automatically generated file; DO NOT EDIT.\n#\n"
    "CONFIG_BLK_DEV_INITRD=y\n"
    "CONFIG_DEVTMPFS=y\n"
    "# CONFIG_X86_MPPARSE is not set\n"
    "CONFIG_VIRTIO_PCI=m\n"
    "CONFIG_VIRTIO_CONSOLE=m\n"
    "# CONFIG_NET_9P is not set\n"
    "CONFIG_OVERLAY_FS=m\n"
    "CONFIG_HW_RANDOM_VIRTIO=m\n"
    "CONFIG_VIRTIO_BLK=m\n"
    "CONFIG_EXT4_FS=y\n"
    "CONFIG_CRYPTO_CRC32C=y\n"
    "CONFIG_VIRTIO_NET=m\n"
    "CONFIG_NR_CPUS=64\n"
    "CONFIG_LOCALVERSION=\"-cloud\"\n";

// Debian's standard kernel: 9p as modules, and the MP table reader.
std::string full_config() {
  std::string text(kCloudConfig);
  text += "CONFIG_X86_MPPARSE=y\nCONFIG_NET_9P=m\nCONFIG_NET_9P_VIRTIO=m\nCONFIG_9P_FS=m\n";
  return text;
}

// What CONFIG_IKCONFIG puts into a kernel: the markers around the gzip'ed .config.
std::string ikconfig_blob(std::string_view config) {
  return "IKCFG_ST" + testing::compress(config, ARCHIVE_FILTER_GZIP) + "IKCFG_ED";
}

class KernelConfigTest : public ::testing::Test {
 protected:
  fs::path dir() const { return tmp_.path(); }
  fs::path put(const fs::path& relative, std::string_view data) {
    fs::path p = dir() / relative;
    make_dirs(p.parent_path());
    write_file_atomic(p, data);
    return p;
  }
  // A kernel as resolve_kernel describes one.
  Kernel kernel(const fs::path& image, const fs::path& modules = {}) const {
    Kernel k;
    k.release = "6.1.0-99-test";
    k.image = image;
    k.pvh = true;
    k.modules_dir = modules;
    k.source = "user";
    return k;
  }
  // A modules directory with these modules (and their dependencies in
  // Debian's 6.1) and this modules.builtin.
  fs::path modules_dir(const std::vector<std::string>& names, const std::string& builtin = "") {
    static const std::map<std::string, std::vector<std::string>> depends = {
        {"virtio_pci", {"virtio"}}, {"virtio_console", {"virtio"}}, {"9pnet_virtio", {"9pnet", "virtio"}},
        {"9p", {"9pnet", "netfs"}}, {"virtio_rng", {"virtio"}},
    };
    fs::path m = dir() / "lib" / "modules" / "6.1.0-99-test";
    for (const std::string& name : names) {
      auto it = depends.find(name);
      std::string file = name == "virtio_rng" ? "virtio-rng.ko" : name + ".ko";
      put(m / "kernel" / file, make_module(name, it == depends.end() ? std::vector<std::string>{} : it->second));
    }
    put(m / "modules.builtin", builtin);
    return m;
  }

  TempDir tmp_{"/tmp", "kestrel-kconfig-"};
  testing::ScopedEnv cache_{"KESTREL_CACHE_DIR", (tmp_.path() / "cache").string()};
};

TEST(KernelConfig, ParsesSetOptionsAndTreatsTheRestAsNotSet) {
  KernelConfig c = parse_kernel_config(kCloudConfig, ConfigSource::kFile, "config-x");
  EXPECT_TRUE(c.complete());
  EXPECT_EQ(c.state("VIRTIO_PCI"), 'm');
  EXPECT_EQ(c.state("EXT4_FS"), 'y');
  EXPECT_EQ(c.values.at("VIRTIO_CONSOLE"), "m");
  EXPECT_FALSE(c.values.contains("NR_CPUS"));  // only what kestrel asks about is kept
  EXPECT_EQ(c.state("X86_MPPARSE"), 'n');      // "# ... is not set"
  EXPECT_EQ(c.state("9P_FS"), 'n');            // absent: its menu is not even shown
  EXPECT_FALSE(keeps_pci_noacpi(c));
  EXPECT_TRUE(keeps_pci_noacpi(parse_kernel_config(full_config(), ConfigSource::kFile, "config-y")));
  // Nothing known: kestrel's flags stay as they always were.
  KernelConfig none;
  EXPECT_EQ(none.state("X86_MPPARSE"), '?');
  EXPECT_TRUE(keeps_pci_noacpi(none));
}

TEST(KernelConfig, FindsTheEmbeddedConfiguration) {
  std::string config = full_config();
  // A stray marker (the string in some other place) before the real one.
  std::string image = testing::make_vmlinux(true) + "IKCFG_ST not gzip" + ikconfig_blob(config) + "tail";
  auto found = embedded_config(image, "vmlinux");
  ASSERT_TRUE(found);
  EXPECT_EQ(*found, config);
  EXPECT_FALSE(embedded_config(testing::make_vmlinux(true), "vmlinux"));
  // Without the end marker the data is not taken for a configuration.
  std::string gz = testing::compress(config, ARCHIVE_FILTER_GZIP);
  EXPECT_FALSE(embedded_config("IKCFG_ST" + gz.substr(0, gz.size() / 2), "cut"));
}

TEST_F(KernelConfigTest, ConfigBesideTheImageComesFirst) {
  // /boot/vmlinuz-R beside /boot/config-R; the image also embeds another one.
  fs::path image = put("boot/vmlinuz-6.1.0-99-test", testing::make_vmlinux(true) + ikconfig_blob(full_config()));
  put("boot/config-6.1.0-99-test", kCloudConfig);
  KernelConfig c = find_kernel_config(kernel(image), image, false);
  EXPECT_EQ(c.source, ConfigSource::kFile);
  EXPECT_EQ(c.where, (dir() / "boot" / "config-6.1.0-99-test").string());
  EXPECT_EQ(c.state("NET_9P"), 'n');

  // The release from the file name when the image does not say it.
  Kernel unnamed = kernel(image);
  unnamed.release = "unknown";
  EXPECT_EQ(find_kernel_config(unnamed, image, false).source, ConfigSource::kFile);
}

TEST_F(KernelConfigTest, CachedKernelsKeepTheirConfigBesideThem) {
  fs::path image = put("kernels/6.1.0-99-test/vmlinux", testing::make_vmlinux(true));
  put("kernels/6.1.0-99-test/config", full_config());
  KernelConfig c = find_kernel_config(kernel(image), {}, false);
  EXPECT_EQ(c.source, ConfigSource::kFile);
  EXPECT_EQ(c.state("9P_FS"), 'm');
  // A user's kernel is not taken to be described by any file called "config".
  EXPECT_EQ(find_kernel_config(kernel(image), image, false).source, ConfigSource::kNone);
}

TEST_F(KernelConfigTest, EmbeddedConfigurationIsReadOnceAndRemembered) {
  fs::path image = put("vmlinux-mine", testing::make_vmlinux(true) + ikconfig_blob(kCloudConfig));
  KernelConfig c = find_kernel_config(kernel(image), image, false);
  EXPECT_EQ(c.source, ConfigSource::kEmbedded);
  EXPECT_NE(c.where.find("CONFIG_IKCONFIG"), std::string::npos) << c.where;
  EXPECT_EQ(c.state("X86_MPPARSE"), 'n');
  ASSERT_EQ(std::distance(fs::directory_iterator(dir() / "cache" / "kernel-configs"), fs::directory_iterator()), 1);
  // The remembered result answers while the file is unchanged...
  for (const auto& e : fs::directory_iterator(dir() / "cache" / "kernel-configs"))
    write_file_atomic(e.path(), full_config());
  EXPECT_EQ(find_kernel_config(kernel(image), image, false).state("X86_MPPARSE"), 'y');
  // ... and a rebuilt kernel is read again.
  write_file_atomic(image, testing::make_vmlinux(true, 8192) + ikconfig_blob(kCloudConfig));
  EXPECT_EQ(find_kernel_config(kernel(image), image, false).state("X86_MPPARSE"), 'n');
  // No configuration is remembered too.
  fs::path plain = put("vmlinux-plain", testing::make_vmlinux(true));
  EXPECT_EQ(find_kernel_config(kernel(plain), plain, false).source, ConfigSource::kNone);
  EXPECT_EQ(find_kernel_config(kernel(plain), plain, false).source, ConfigSource::kNone);
}

TEST_F(KernelConfigTest, EmbeddedConfigurationOfABzImage) {
  // A bzImage without a PVH entry is booted as it is: its configuration is
  // in the compressed kernel.
  fs::path image = put("bzImage-x", testing::make_bzimage(testing::make_vmlinux(false) + ikconfig_blob(kCloudConfig),
                                                          ARCHIVE_FILTER_XZ));
  Kernel k = kernel(image);
  k.pvh = false;
  KernelConfig c = find_kernel_config(k, image, false);
  EXPECT_EQ(c.source, ConfigSource::kEmbedded);
  EXPECT_EQ(c.state("VIRTIO_CONSOLE"), 'm');
}

TEST_F(KernelConfigTest, ConfigsModuleAndBuildTree) {
  // CONFIG_IKCONFIG=m: the configuration is in configs.ko.
  fs::path image = put("img/vmlinuz", testing::make_vmlinux(true));
  fs::path modules = modules_dir({"virtio_pci"});
  put(modules / "kernel" / "kernel" / "configs.ko", make_module("configs", {}) + ikconfig_blob(full_config()));
  KernelConfig c = find_kernel_config(kernel(image, modules), image, false);
  EXPECT_EQ(c.source, ConfigSource::kEmbedded);
  EXPECT_NE(c.where.find("configs.ko"), std::string::npos) << c.where;

  // A kernel build tree: <tree>/vmlinux or <tree>/arch/x86/boot/bzImage, and <tree>/.config.
  fs::path vmlinux = put("linux/vmlinux", testing::make_vmlinux(true));
  fs::path bzimage = put("linux/arch/x86/boot/bzImage", "not read");
  put("linux/.config", kCloudConfig);
  EXPECT_EQ(find_kernel_config(kernel(vmlinux), vmlinux, false).where, (dir() / "linux" / ".config").string());
  Kernel k = kernel(vmlinux);  // a bzImage resolves to the vmlinux extracted from it
  EXPECT_EQ(find_kernel_config(k, bzimage, false).where, (dir() / "linux" / ".config").string());
}

TEST_F(KernelConfigTest, ModulesTellOnlyAboutModuleOptions) {
  fs::path image = put("vmlinuz-none", testing::make_vmlinux(true));
  fs::path modules = modules_dir({"virtio_pci", "virtio_console", "overlay", "virtio_rng", "virtio", "virtio_net"},
                                 "kernel/fs/ext4/ext4.ko\nkernel/drivers/block/virtio_blk.ko\n");
  Kernel k = kernel(image, modules);
  // Not for every run: it lists the whole tree.
  EXPECT_EQ(find_kernel_config(k, image, false).source, ConfigSource::kNone);
  KernelConfig c = find_kernel_config(k, image, true);
  EXPECT_EQ(c.source, ConfigSource::kModules);
  EXPECT_FALSE(c.complete());
  EXPECT_EQ(c.state("VIRTIO_PCI"), 'm');
  EXPECT_EQ(c.state("HW_RANDOM_VIRTIO"), 'm');  // virtio-rng.ko
  EXPECT_EQ(c.state("EXT4_FS"), 'y');           // modules.builtin
  EXPECT_EQ(c.state("NET_9P"), 'n');
  EXPECT_EQ(c.state("X86_MPPARSE"), '?');  // not a module: no telling
  EXPECT_TRUE(keeps_pci_noacpi(c));

  ModuleTree tree(modules);
  std::vector<FeatureState> states = check_features(c, k, &tree);
  std::string message = lacks_message(k, image, states, {});
  EXPECT_NE(
      message.find("9p file sharing (CONFIG_NET_9P, CONFIG_NET_9P_VIRTIO and CONFIG_9P_FS, each =y or =m with "
                   "its modules in the modules dir; the modules in " +
                   modules.string() + ": no 9pnet, 9pnet_virtio or 9p module, and modules.builtin lists none of them)"),
      std::string::npos)
      << message;
  for (const FeatureState& s : states) {
    if (std::string_view(s.feature->check) == "basics") {
      EXPECT_EQ(s.verdict, FeatureState::Verdict::kUnknown);
    } else if (std::string_view(s.feature->check) == "console") {
      EXPECT_EQ(s.verdict, FeatureState::Verdict::kOk);
    }
  }
}

TEST_F(KernelConfigTest, OneMessageNamesWhatIsMissingAndWhatToDo) {
  fs::path image = put("boot/vmlinuz-6.1.0-99-test", testing::make_vmlinux(true));
  std::string no_net(kCloudConfig);
  no_net.replace(no_net.find("CONFIG_VIRTIO_NET=m"), 19, "# CONFIG_VIRTIO_NET is not set");
  put("boot/config-6.1.0-99-test", no_net);
  fs::path modules = modules_dir({"virtio_pci", "virtio_console", "overlay", "virtio_rng", "virtio"});
  Kernel k = kernel(image, modules);
  KernelConfig c = find_kernel_config(k, image, false);
  std::string message = lacks_message(k, image, check_features(c, k, nullptr), {});
  EXPECT_EQ(message, "kernel " + image.string() +
                         " lacks what kestrel needs: 9p file sharing (CONFIG_NET_9P, CONFIG_NET_9P_VIRTIO and "
                         "CONFIG_9P_FS, each =y or =m with its modules in the modules dir; " +
                         (dir() / "boot" / "config-6.1.0-99-test").string() +
                         ": CONFIG_NET_9P, CONFIG_NET_9P_VIRTIO and CONFIG_9P_FS are not set). Debian's "
                         "linux-image-amd64 has them (kestrel kernel fetch; its cloud kernel lacks 9p); or build "
                         "one: kestrel kernel build");
  // The network matters to topologies only.
  std::string with_net = lacks_message(k, image, check_features(c, k, nullptr), {.network = true});
  EXPECT_NE(with_net.find("; network links of topologies (CONFIG_VIRTIO_NET, =y or =m with its module in the "
                          "modules dir; "),
            std::string::npos)
      << with_net;
  EXPECT_EQ(with_net.find('\n'), std::string::npos);
  // Nothing missing: no message.
  put("boot/config-6.1.0-99-test", full_config());
  EXPECT_EQ(lacks_message(k, image, check_features(find_kernel_config(k, image, false), k, nullptr), {}), "");
}

TEST_F(KernelConfigTest, ModularFeaturesNeedTheirModules) {
  fs::path image = put("boot/vmlinuz-6.1.0-99-test", testing::make_vmlinux(true));
  put("boot/config-6.1.0-99-test", full_config());
  // No modules directory at all.
  Kernel bare = kernel(image);
  std::vector<FeatureState> states = check_features(find_kernel_config(bare, image, false), bare, nullptr);
  std::string message = lacks_message(bare, image, states, {});
  EXPECT_NE(message.find("lacks what kestrel needs: the modules of virtio PCI devices, the virtio console, 9p file "
                         "sharing, the overlay file system and the virtio entropy source (" +
                         (dir() / "boot" / "config-6.1.0-99-test").string() +
                         ": CONFIG_VIRTIO_PCI=m, CONFIG_VIRTIO_CONSOLE=m, CONFIG_NET_9P=m, CONFIG_NET_9P_VIRTIO=m, "
                         "CONFIG_9P_FS=m, CONFIG_OVERLAY_FS=m, CONFIG_HW_RANDOM_VIRTIO=m), and no modules directory "
                         "was given. Pass the kernel's modules: --kernel-modules"),
            std::string::npos)
      << message;
  EXPECT_EQ(message.find("kestrel kernel build"), std::string::npos) << message;  // nothing is lacking but modules

  // A modules directory that lacks one of what a module needs.
  fs::path modules =
      modules_dir({"virtio_pci", "virtio_console", "overlay", "virtio_rng", "virtio", "9pnet", "9pnet_virtio", "9p"});
  Kernel k = kernel(image, modules);
  ModuleTree tree(modules);
  states = check_features(find_kernel_config(k, image, false), k, &tree);
  message = lacks_message(k, image, states, {});
  EXPECT_NE(message.find("CONFIG_9P_FS=m but module netfs (needed by 9p) is not in " + modules.string()),
            std::string::npos)
      << message;
  // Taken on trust without the tree (every run): the module plan checks it.
  EXPECT_EQ(lacks_message(k, image, check_features(find_kernel_config(k, image, false), k, nullptr), {}), "");
}

TEST_F(KernelConfigTest, ModulesBuiltApartFromTheKernelCount) {
  // Debian's cloud kernel (no 9p) with 9p modules built for it out of tree.
  fs::path image = put("boot/vmlinuz-6.1.0-99-test", testing::make_vmlinux(true));
  put("boot/config-6.1.0-99-test", kCloudConfig);
  fs::path modules = modules_dir(
      {"virtio_pci", "virtio_console", "overlay", "virtio_rng", "virtio", "9pnet", "9pnet_virtio", "9p", "netfs"});
  Kernel k = kernel(image, modules);
  KernelConfig c = find_kernel_config(k, image, false);
  EXPECT_NE(lacks_message(k, image, check_features(c, k, nullptr), {}), "");  // the config alone says no
  ModuleTree tree(modules);
  std::vector<FeatureState> states = check_features(c, k, &tree);
  EXPECT_EQ(lacks_message(k, image, states, {}), "");
  for (const FeatureState& s : states) {
    if (std::string_view(s.feature->check) != "9p") continue;
    EXPECT_EQ(s.verdict, FeatureState::Verdict::kOk);
    EXPECT_EQ(s.detail,
              "CONFIG_NET_9P (not set, but module 9pnet is there), CONFIG_NET_9P_VIRTIO (not set, but module "
              "9pnet_virtio is there), CONFIG_9P_FS (not set, but module 9p is there)");
  }
  EXPECT_FALSE(keeps_pci_noacpi(c));  // and it still lacks the MP table reader
}

TEST(KernelConfig, MissingModuleSaysWhoNeededIt) {
  std::map<std::string, std::vector<std::string>> deps = {{"9p", {"9pnet", "netfs"}}, {"9pnet", {}}};
  ModuleLookup lookup;
  lookup.depends = [&](const std::string& name) -> const std::vector<std::string>* {
    auto it = deps.find(name);
    return it == deps.end() ? nullptr : &it->second;
  };
  lookup.where = "in the test";
  try {
    load_order({"9p"}, lookup);
    FAIL() << "no error";
  } catch (const MissingModule& e) {
    EXPECT_EQ(e.module(), "netfs");
    EXPECT_EQ(e.chain(), std::vector<std::string>{"9p"});
    EXPECT_NE(std::string(e.what()).find("kernel module netfs (needed by 9p) is not in the test"), std::string::npos);
  }
}

}  // namespace
}  // namespace kestrel::assets
