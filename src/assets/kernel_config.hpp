// A guest kernel's configuration, learned without booting it, and what
// kestrel needs of it (docs/guest.md, "Kernels of your own"): the features a
// boot needs (9p, the virtio console, overlay, ...), each with the options
// and modules that give it, and the flags kestrel adapts to the kernel.
//
// Where a configuration comes from, first found wins:
//   1. config-<release> beside the image the user named (/boot/config-6.1.0-26-cloud-amd64
//      next to /boot/vmlinuz-6.1.0-26-cloud-amd64), or beside the kernel kestrel boots;
//      for a cached kernel, the `config` kept beside it (assets/kernel_store.hpp);
//   2. the configuration built into the kernel (CONFIG_IKCONFIG: "IKCFG_ST", gzip data,
//      "IKCFG_ED"), in the uncompressed kernel or in its configs module (remembered per
//      file identity in cache_dir()/kernel-configs: a search reads tens of MB);
//   3. a kernel build tree's .config (the image is <tree>/vmlinux or
//      <tree>/arch/x86/boot/bzImage);
//   4. (thorough lookups only) the modules directory: a module file present is =m, one
//      listed in modules.builtin =y, for the options of kestrel's modules only.
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "assets/kernel.hpp"

namespace kestrel::assets {

class ModuleTree;

enum class ConfigSource {
  kNone,      // nothing found: kestrel cannot tell, and assumes what it always did
  kFile,      // a configuration file
  kEmbedded,  // CONFIG_IKCONFIG
  kModules,   // guessed from the modules directory (only module options)
};

struct KernelConfig {
  ConfigSource source = ConfigSource::kNone;
  // For messages: the file, "the configuration built into K (CONFIG_IKCONFIG)",
  // "the modules in DIR", or "" for kNone.
  std::string where;
  // Option (without "CONFIG_") → its value as written ("y", "m", "0x10",
  // "\"text\""), for the options kestrel consults (consulted_options()).
  // Options that are not set are absent.
  std::unordered_map<std::string, std::string> values;
  // kModules: the options the modules directory can tell about.
  std::unordered_set<std::string> known;

  // A whole configuration: every option absent from `values` is not set.
  bool complete() const { return source == ConfigSource::kFile || source == ConfigSource::kEmbedded; }
  // For a consulted option: 'y' (built in, or set to a value), 'm', 'n' (not
  // set), or '?' (the source cannot tell).
  char state(std::string_view option) const;
};

// The options kestrel asks a configuration about: those of kernel_features()
// and X86_MPPARSE. (Keeping only these makes reading a .config of thousands
// of lines cheap enough for every run.)
bool is_consulted_option(std::string_view option);

// Reads a .config ("CONFIG_X=y" lines; "# CONFIG_X is not set" and anything
// else is ignored), keeping the consulted options.
KernelConfig parse_kernel_config(std::string_view text, ConfigSource source, std::string where);

// The configuration built into an uncompressed kernel or module
// (CONFIG_IKCONFIG), or nullopt if it has none.
std::optional<std::string> embedded_config(std::string_view image, std::string_view what);

// What the modules directory says about the options of kestrel's modules
// (kernel_features()): =m for a module file in the tree, =y for one in its
// modules.builtin, not set otherwise. kNone for no directory.
KernelConfig config_from_modules(ModuleTree& tree);

// The kernel's configuration, from the first source that has one (the list
// at the top). `named_image` is the image the user named (a bzImage resolves
// to the vmlinux extracted from it), empty for a cached kernel. `thorough`
// adds the modules directory as a last resort (a listing of the whole tree:
// for checks and error messages, not for every run).
KernelConfig find_kernel_config(const Kernel& kernel, const std::filesystem::path& named_image, bool thorough);

// ---- What kestrel needs ----------------------------------------------------

enum class Need {
  kBoot,     // every VM
  kDisk,     // a disk root (--image)
  kNetwork,  // NICs (topologies)
};

struct KernelOption {
  const char* name;    // without "CONFIG_"
  const char* module;  // the module it builds as, or nullptr for an option that must be =y
};

struct Feature {
  const char* check;  // short name: `kestrel doctor` prints it
  const char* what;   // "9p file sharing"
  Need need;
  std::vector<KernelOption> options;
};

// The features, in the order a boot uses them.
const std::vector<Feature>& kernel_features();

struct FeatureState {
  enum class Verdict { kOk, kMissing, kUnknown };
  const Feature* feature = nullptr;
  Verdict verdict = Verdict::kUnknown;
  // kOk: "CONFIG_NET_9P=m, CONFIG_NET_9P_VIRTIO=m, CONFIG_9P_FS=m"; kMissing:
  // why, naming the source ("/boot/config-X: CONFIG_NET_9P is not set");
  // kUnknown: why not.
  std::string detail;
  // kMissing only because its options are =m but no modules directory was
  // given: those options ("CONFIG_VIRTIO_PCI=m"), and where that was read.
  bool needs_modules_dir = false;
  std::vector<std::string> modular;
  std::string where;
};

// Each feature as `config` says. With `modules`, each =m option's module and
// everything it depends on must be in that tree (or built in), and a module
// there counts even where the configuration says its option is not set (one
// built apart from the kernel); without, =m is taken on trust (the module
// plan of the boot checks it).
std::vector<FeatureState> check_features(const KernelConfig& config, const Kernel& kernel, ModuleTree* modules);

// Which features a VM needs.
struct Needs {
  bool disk = false;
  bool network = false;
  bool wants(Need need) const { return need == Need::kBoot || (need == Need::kDisk ? disk : network); }
};

// How messages name the kernel: the image the user named, else its release.
std::string kernel_display_name(const Kernel& kernel, const std::filesystem::path& named_image);

// "kernel K lacks what kestrel needs: 9p file sharing (CONFIG_NET_9P, ..., each
// =y or =m with its modules in the modules dir; WHERE: CONFIG_NET_9P is not
// set). <what to do>", for the missing features `needs` covers; "" when none is.
std::string lacks_message(const Kernel& kernel, const std::filesystem::path& named_image,
                          const std::vector<FeatureState>& states, const Needs& needs);

// What to do about a missing feature (one line, for `kestrel doctor`).
std::string feature_fix(const FeatureState& state, const Kernel& kernel);

// Whether kestrel's `pci=noacpi` suits this kernel: not when it lacks
// CONFIG_X86_MPPARSE (without ACPI interrupt routing and without an MP table
// reader it switches its local APIC off: "SMP disabled", one CPU). True when
// the configuration cannot tell.
bool keeps_pci_noacpi(const KernelConfig& config);

}  // namespace kestrel::assets
