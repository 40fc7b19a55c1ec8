#include <gtest/gtest.h>

#include <map>

#include "assets/module_plan.hpp"
#include "assets/modules.hpp"
#include "assets_test_support.hpp"
#include "util/error.hpp"
#include "util/fs.hpp"

namespace kestrel::assets {
namespace {

namespace fs = std::filesystem;
using testing::make_module;

// A dependency graph in memory, like Debian 6.1's modules for our defaults.
struct Graph {
  std::map<std::string, std::vector<std::string>> depends = {
      {"virtio_ring", {}},
      {"virtio", {}},
      {"virtio_pci_legacy_dev", {}},
      {"virtio_pci_modern_dev", {}},
      {"virtio_pci", {"virtio_pci_modern_dev", "virtio_pci_legacy_dev", "virtio_ring", "virtio"}},
      {"virtio_console", {"virtio_ring", "virtio"}},
      {"netfs", {}},
      {"fscache", {"netfs"}},
      {"9pnet", {}},
      {"9pnet_virtio", {"9pnet", "virtio_ring", "virtio"}},
      {"9p", {"9pnet", "netfs", "fscache"}},
      {"overlay", {}},
      {"virtio_rng", {"virtio_ring", "virtio"}},
  };
  std::unordered_set<std::string> builtin;

  ModuleLookup lookup() {
    ModuleLookup l;
    l.depends = [this](const std::string& name) -> const std::vector<std::string>* {
      auto it = depends.find(name);
      return it == depends.end() ? nullptr : &it->second;
    };
    l.builtin = &builtin;
    l.where = "in the test graph";
    return l;
  }
};

size_t position(const std::vector<std::string>& order, const std::string& name) {
  auto it = std::find(order.begin(), order.end(), name);
  EXPECT_NE(it, order.end()) << name << " missing";
  return static_cast<size_t>(it - order.begin());
}

TEST(LoadOrder, EveryModuleComesAfterItsDependencies) {
  Graph g;
  std::vector<std::string> order =
      load_order({"virtio_pci", "virtio_console", "9pnet_virtio", "9p", "overlay", "virtio-rng"}, g.lookup());
  EXPECT_EQ(order.size(), g.depends.size());
  for (const auto& [name, deps] : g.depends)
    for (const std::string& dep : deps) EXPECT_LT(position(order, dep), position(order, name)) << dep << " < " << name;
  // Deterministic: dependencies in their listed order, wanted in given order.
  EXPECT_EQ(order.front(), "virtio_pci_modern_dev");
  EXPECT_EQ(order.back(), "virtio_rng");
}

TEST(LoadOrder, DashAndUnderscoreAreTheSame) {
  Graph g;
  g.depends["virtio_rng"] = {"virtio-ring"};
  std::vector<std::string> order = load_order({"virtio-rng"}, g.lookup());
  EXPECT_EQ(order, (std::vector<std::string>{"virtio_ring", "virtio_rng"}));
}

TEST(LoadOrder, BuiltinModulesAreSkipped) {
  Graph g;
  g.builtin = {"virtio", "virtio_ring", "overlay"};
  g.depends.erase("overlay");  // built in: no file
  std::vector<std::string> order = load_order({"virtio_console", "overlay"}, g.lookup());
  EXPECT_EQ(order, std::vector<std::string>{"virtio_console"});
}

TEST(LoadOrder, MissingModuleNamesItAndItsUser) {
  Graph g;
  g.depends.erase("netfs");
  try {
    load_order({"9p"}, g.lookup());
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(),
                 "kernel module netfs (needed by 9p) is not in the test graph and not built into the kernel "
                 "(modules.builtin)");
  }
}

TEST(LoadOrder, MissingOkWhenEverythingIsBuiltIn) {
  Graph g;
  g.depends.clear();
  ModuleLookup l = g.lookup();
  l.missing_ok = true;
  EXPECT_TRUE(load_order({"virtio_pci", "9p"}, l).empty());
}

TEST(LoadOrder, CycleIsAnError) {
  Graph g;
  g.depends["netfs"] = {"9p"};
  EXPECT_THROW(load_order({"9p"}, g.lookup()), Error);
}

class ModuleTreeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    write("kernel/drivers/virtio/virtio.ko", make_module("virtio", {}));
    write("kernel/drivers/virtio/virtio_ring.ko", make_module("virtio_ring", {}));
    // Compressed, with a '-' in its file name.
    write("kernel/drivers/char/hw_random/virtio-rng.ko.xz",
          testing::compress(make_module("virtio_rng", {"virtio_ring", "virtio"}), ARCHIVE_FILTER_XZ));
    // A file not named after its module.
    write("kernel/fs/overlayfs/overlayfs-module.ko.gz",
          testing::compress(make_module("overlay", {}), ARCHIVE_FILTER_GZIP));
    write_file_atomic(dir_.path() / "modules.builtin", "kernel/fs/9p/9p.ko\n");
  }
  void write(const std::string& rel, const std::string& bytes) {
    make_dirs((dir_.path() / rel).parent_path());
    write_file_atomic(dir_.path() / rel, bytes);
  }
  TempDir dir_{"/tmp", "kestrel-modtree-"};
  TempDir cache_{"/tmp", "kestrel-cache-"};
  testing::ScopedEnv env_{"KESTREL_CACHE_DIR", cache_.path().string()};
};

TEST_F(ModuleTreeTest, ResolvesCompressedRenamedAndBuiltinModules) {
  ModuleTree tree(dir_.path());
  std::vector<const ModuleTree::Module*> mods = tree.resolve({"virtio-rng", "overlay", "9p"});
  std::vector<std::string> names;
  for (const auto* m : mods) names.push_back(m->name);
  EXPECT_EQ(names, (std::vector<std::string>{"virtio_ring", "virtio", "virtio_rng", "overlay"}));
  EXPECT_EQ(mods[2]->path.filename(), "virtio-rng.ko.xz");
  EXPECT_EQ(mods[3]->path.filename(), "overlayfs-module.ko.gz");
}

TEST_F(ModuleTreeTest, MissingModuleIsAnErrorNamingTheDirectory) {
  ModuleTree tree(dir_.path());
  try {
    tree.resolve({"virtio_console"});
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("kernel module virtio_console is not in " + dir_.path().string()),
              std::string::npos)
        << e.what();
  }
}

TEST_F(ModuleTreeTest, NoDirectoryMeansEverythingBuiltIn) {
  EXPECT_TRUE(plan_modules({}, {"virtio_pci", "9p"}).empty());
}

TEST_F(ModuleTreeTest, PlanIsRememberedAndInvalidatedByChanges) {
  std::vector<PlannedModule> plan = plan_modules(dir_.path(), {"virtio_rng"});
  ASSERT_EQ(plan.size(), 3u);
  EXPECT_EQ(plan[2].name, "virtio_rng");
  size_t plans = 0;
  for (const auto& e : fs::directory_iterator(cache_.path() / "initramfs" / "plans")) plans += e.is_regular_file();
  EXPECT_EQ(plans, 1u);
  EXPECT_EQ(plan_modules(dir_.path(), {"virtio_rng"}).size(), 3u);

  // virtio_rng loses a dependency: the file changes, so the plan is redone.
  write("kernel/drivers/char/hw_random/virtio-rng.ko.xz",
        testing::compress(make_module("virtio_rng", {"virtio"}), ARCHIVE_FILTER_XZ));
  plan = plan_modules(dir_.path(), {"virtio_rng"});
  ASSERT_EQ(plan.size(), 2u);
  EXPECT_EQ(plan[0].name, "virtio");
}

}  // namespace
}  // namespace kestrel::assets
