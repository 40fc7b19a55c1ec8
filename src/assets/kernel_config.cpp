#include "assets/kernel_config.hpp"

#include <functional>

#include "assets/archive.hpp"
#include "assets/cache.hpp"
#include "assets/elf.hpp"
#include "assets/file_stamp.hpp"
#include "assets/mapped_file.hpp"
#include "assets/modinfo.hpp"
#include "assets/modules.hpp"
#include "assets/vmlinux.hpp"
#include "util/error.hpp"
#include "util/fs.hpp"
#include "util/json.hpp"
#include "util/sha256.hpp"
#include "util/strings.hpp"

namespace kestrel::assets {

namespace {

namespace fs = std::filesystem;

std::string join_names(const std::vector<std::string>& names, std::string_view last) {
  std::string out;
  for (size_t i = 0; i < names.size(); ++i) {
    if (i > 0) out += i + 1 == names.size() ? fmt::format(" {} ", last) : ", ";
    out += names[i];
  }
  return out;
}

// A file's text, or nullopt when it is not there or cannot be read.
std::optional<std::string> try_read(const fs::path& path) {
  try {
    return read_file_if_exists(path);
  } catch (const Error&) {
    return std::nullopt;
  }
}

// The search for an embedded configuration reads a whole kernel (tens of
// MB, decompressed first when it is a bzImage): its result is remembered per
// file identity, a configuration as its text, none as an empty file.
std::optional<std::string> remembered_embedded(const fs::path& file,
                                               const std::function<std::optional<std::string>()>& search) {
  nlohmann::json stamp = file_stamp(file);
  if (stamp.is_null()) return std::nullopt;
  fs::path dir = cache_dir() / "kernel-configs";
  fs::path entry =
      dir / (sha256_hex(fmt::format("kestrel-ikconfig-1\n{}\n{}", file.string(), dump_json(stamp))) + ".config");
  if (auto text = try_read(entry)) {
    if (text->empty()) return std::nullopt;
    return text;
  }
  std::optional<std::string> found;
  try {
    found = search();
  } catch (const Error&) {
    found.reset();  // not a kernel we can read: no configuration from it
  }
  try {
    make_dirs(dir, 0755);
    write_file_atomic(entry, found.value_or(""));
  } catch (const Error&) {
    // Only a shortcut for the next run.
  }
  return found;
}

bool looks_like_config(std::string_view text) { return text.find("CONFIG_") != std::string_view::npos; }

std::optional<KernelConfig> config_file(const fs::path& path) {
  auto text = try_read(path);
  if (!text || !looks_like_config(*text)) return std::nullopt;
  return parse_kernel_config(*text, ConfigSource::kFile, path.string());
}

// config-<release> beside an image, by the release the image says and the
// one its file name says (vmlinuz-<release>).
std::vector<fs::path> configs_beside(const fs::path& image, const std::string& release) {
  std::vector<fs::path> out;
  if (image.empty()) return out;
  fs::path dir = image.parent_path();
  if (!release.empty() && release != "unknown") out.push_back(dir / ("config-" + release));
  std::string name = image.filename().string();
  for (std::string_view prefix : {"vmlinuz-", "vmlinux-", "bzImage-"}) {
    if (name.starts_with(prefix) && name.size() > prefix.size()) {
      fs::path p = dir / ("config-" + name.substr(prefix.size()));
      if (out.empty() || out.front() != p) out.push_back(p);
    }
  }
  return out;
}

// The .config of the build tree an image was built in: <tree>/vmlinux, or
// <tree>/arch/<arch>/boot/bzImage.
fs::path build_tree_config(const fs::path& image) {
  if (image.empty()) return {};
  if (image.filename() == "vmlinux") return image.parent_path() / ".config";
  fs::path boot = image.parent_path();
  if (image.filename() == "bzImage" && boot.filename() == "boot" &&
      boot.parent_path().parent_path().filename() == "arch")
    return boot.parent_path().parent_path().parent_path() / ".config";
  return {};
}

std::optional<std::string> embedded_in_kernel(const fs::path& image) {
  return remembered_embedded(image, [&]() -> std::optional<std::string> {
    MappedFile file(image);
    if (elf::is_elf64(file.bytes())) return embedded_config(file.bytes(), image.string());
    if (!is_bzimage(file.bytes())) return std::nullopt;
    std::string vmlinux;
    extract_vmlinux(
        file.bytes(), [&](std::string_view chunk) { vmlinux.append(chunk); }, image.string());
    return embedded_config(vmlinux, image.string());
  });
}

// CONFIG_IKCONFIG=m puts the configuration in a module of its own.
std::optional<std::pair<fs::path, std::string>> embedded_in_module(const fs::path& modules_dir) {
  if (modules_dir.empty()) return std::nullopt;
  for (const fs::path& dir : {modules_dir / "kernel" / "kernel", modules_dir}) {
    for (const char* name : {"configs.ko", "configs.ko.xz", "configs.ko.zst", "configs.ko.gz"}) {
      fs::path file = dir / name;
      std::error_code ec;
      if (!fs::is_regular_file(file, ec)) continue;
      auto text = remembered_embedded(file, [&] { return embedded_config(read_module_file(file), file.string()); });
      if (text) return std::pair{file, std::move(*text)};
    }
  }
  return std::nullopt;
}

std::string option_list(const Feature& f) {
  std::vector<std::string> names;
  bool modular = false;
  for (const KernelOption& o : f.options) {
    names.push_back(std::string("CONFIG_") + o.name);
    modular = modular || o.module;
  }
  std::string list = join_names(names, "and");
  if (!modular) return fmt::format("{}, {}", list, names.size() > 1 ? "each =y" : "=y");
  if (names.size() == 1) return list + ", =y or =m with its module in the modules dir";
  return list + ", each =y or =m with its modules in the modules dir";
}

}  // namespace

bool is_consulted_option(std::string_view option) {
  static const std::unordered_set<std::string_view> consulted = [] {
    std::unordered_set<std::string_view> names = {"X86_MPPARSE"};
    for (const Feature& f : kernel_features())
      for (const KernelOption& o : f.options) names.insert(o.name);
    return names;
  }();
  return consulted.contains(option);
}

char KernelConfig::state(std::string_view option) const {
  std::string key(option);
  if (source == ConfigSource::kNone) return '?';
  if (source == ConfigSource::kModules && !known.contains(key)) return '?';
  auto it = values.find(key);
  if (it == values.end() || it->second == "n") return 'n';
  return it->second == "m" ? 'm' : 'y';
}

KernelConfig parse_kernel_config(std::string_view text, ConfigSource source, std::string where) {
  KernelConfig c;
  c.source = source;
  c.where = std::move(where);
  size_t pos = 0;
  while (pos < text.size()) {
    size_t end = text.find('\n', pos);
    if (end == std::string_view::npos) end = text.size();
    std::string_view line = trim(text.substr(pos, end - pos));
    pos = end + 1;
    if (!line.starts_with("CONFIG_")) continue;
    size_t eq = line.find('=');
    if (eq == std::string_view::npos) continue;
    std::string_view option = line.substr(7, eq - 7);
    if (is_consulted_option(option)) c.values.insert_or_assign(std::string(option), std::string(line.substr(eq + 1)));
  }
  return c;
}

std::optional<std::string> embedded_config(std::string_view image, std::string_view what) {
  // kernel/configs.c: .ascii "IKCFG_ST", the gzip'ed .config, .ascii "IKCFG_ED".
  constexpr std::string_view kStart = "IKCFG_ST", kEnd = "IKCFG_ED";
  for (size_t at = image.find(kStart); at != std::string_view::npos; at = image.find(kStart, at + 1)) {
    std::string_view rest = image.substr(at + kStart.size());
    if (detect_compression(rest) != Compression::kGzip) continue;  // the string itself, elsewhere
    // The end marker could occur inside the compressed bytes: try each, nearest first.
    size_t tries = 0;
    for (size_t end = rest.find(kEnd); end != std::string_view::npos && tries < 8;
         end = rest.find(kEnd, end + 1), ++tries) {
      try {
        std::string text = decompress(rest.substr(0, end), fmt::format("the configuration in {}", what));
        if (looks_like_config(text)) return text;
      } catch (const Error&) {
        // truncated at a false end marker: try the next one
      }
    }
  }
  return std::nullopt;
}

KernelConfig config_from_modules(ModuleTree& tree) {
  KernelConfig c;
  if (tree.dir().empty()) return c;
  c.source = ConfigSource::kModules;
  c.where = "the modules in " + tree.dir().string();
  for (const Feature& f : kernel_features()) {
    for (const KernelOption& o : f.options) {
      if (!o.module) continue;
      c.known.insert(o.name);
      std::string module = normalize_module_name(o.module);
      if (tree.builtin().contains(module))
        c.values[o.name] = "y";
      else if (tree.has_file_for(module))
        c.values[o.name] = "m";
    }
  }
  return c;
}

KernelConfig find_kernel_config(const Kernel& kernel, const fs::path& named_image, bool thorough) {
  // 1. A configuration file beside the image.
  std::vector<fs::path> files = configs_beside(named_image, kernel.release);
  if (named_image.empty()) {  // a cached kernel: its directory keeps the package's config
    for (fs::path& p : configs_beside(kernel.image, kernel.release)) files.push_back(std::move(p));
    files.push_back(kernel.image.parent_path() / "config");
  }
  for (const fs::path& file : files)
    if (auto c = config_file(file)) return std::move(*c);

  // 2. CONFIG_IKCONFIG, in the kernel or in its configs module.
  if (!kernel.image.empty()) {
    if (auto text = embedded_in_kernel(kernel.image))
      return parse_kernel_config(*text, ConfigSource::kEmbedded,
                                 fmt::format("the configuration built into {} (CONFIG_IKCONFIG)",
                                             named_image.empty() ? kernel.image.string() : named_image.string()));
  }
  if (auto found = embedded_in_module(kernel.modules_dir))
    return parse_kernel_config(found->second, ConfigSource::kEmbedded,
                               fmt::format("the configuration in {} (CONFIG_IKCONFIG=m)", found->first.string()));

  // 3. The build tree's .config.
  if (fs::path file = build_tree_config(named_image); !file.empty())
    if (auto c = config_file(file)) return std::move(*c);

  // 4. The modules.
  if (thorough && !kernel.modules_dir.empty()) {
    ModuleTree tree(kernel.modules_dir);
    return config_from_modules(tree);
  }
  return {};
}

const std::vector<Feature>& kernel_features() {
  static const std::vector<Feature> features = {
      {"basics", "the initramfs and /dev", Need::kBoot, {{"BLK_DEV_INITRD", nullptr}, {"DEVTMPFS", nullptr}}},
      {"virtio", "virtio PCI devices", Need::kBoot, {{"VIRTIO_PCI", "virtio_pci"}}},
      {"console", "the virtio console", Need::kBoot, {{"VIRTIO_CONSOLE", "virtio_console"}}},
      {"9p", "9p file sharing", Need::kBoot, {{"NET_9P", "9pnet"}, {"NET_9P_VIRTIO", "9pnet_virtio"}, {"9P_FS", "9p"}}},
      {"overlay", "the overlay file system", Need::kBoot, {{"OVERLAY_FS", "overlay"}}},
      {"rng", "the virtio entropy source", Need::kBoot, {{"HW_RANDOM_VIRTIO", "virtio_rng"}}},
      // ext4 asks the crypto API for crc32c (docs/guest.md, the disk modules).
      {"disk",
       "disk roots of images (--image)",
       Need::kDisk,
       {{"VIRTIO_BLK", "virtio_blk"}, {"EXT4_FS", "ext4"}, {"CRYPTO_CRC32C", "crc32c_generic"}}},
      {"network", "network links of topologies", Need::kNetwork, {{"VIRTIO_NET", "virtio_net"}}},
  };
  return features;
}

std::vector<FeatureState> check_features(const KernelConfig& config, const Kernel& kernel, ModuleTree* modules) {
  std::vector<FeatureState> out;
  for (const Feature& f : kernel_features()) {
    FeatureState s;
    s.feature = &f;
    std::vector<std::string> present, not_set, unknown, problems;
    bool modular_without_dir = false;
    for (const KernelOption& o : f.options) {
      std::string name = std::string("CONFIG_") + o.name;
      char state = config.state(o.name);
      // A module built apart from the kernel (out of tree, for a kernel built
      // without it) counts: the boot loads what is in the directory.
      bool added = state == 'n' && o.module && modules && !kernel.modules_dir.empty() &&
                   modules->has_file_for(normalize_module_name(o.module));
      if (added) state = 'm';
      if (state == '?') {
        unknown.push_back(name);
      } else if (state == 'n' || (state == 'm' && !o.module)) {
        not_set.push_back(state == 'n' ? name : name + "=m");
      } else if (state == 'm' && kernel.modules_dir.empty()) {
        modular_without_dir = true;
        problems.push_back(name + "=m");
      } else if (state == 'm' && modules) {
        try {
          modules->resolve({o.module});
          present.push_back(added ? fmt::format("{} (not set, but module {} is there)", name, o.module) : name + "=m");
        } catch (const MissingModule& e) {
          std::string module =
              e.chain().empty() ? e.module() : fmt::format("{} (needed by {})", e.module(), e.chain().back());
          problems.push_back(fmt::format("{}=m but module {} is not in {}", name, module, kernel.modules_dir.string()));
        } catch (const Error& e) {
          problems.push_back(fmt::format("{}=m but its module cannot be used: {}", name, e.what()));
        }
      } else {
        present.push_back(fmt::format("{}={}", name, state));
      }
    }
    if (!not_set.empty() || !problems.empty()) {
      s.verdict = FeatureState::Verdict::kMissing;
      std::vector<std::string> why;
      if (config.source == ConfigSource::kModules && !not_set.empty()) {
        std::vector<std::string> names;
        for (const KernelOption& o : f.options)
          if (o.module && config.state(o.name) == 'n') names.push_back(o.module);
        why.push_back(fmt::format("no {} module, and modules.builtin lists {}", join_names(names, "or"),
                                  names.size() > 1 ? "none of them" : "none"));
      } else if (!not_set.empty()) {
        why.push_back(fmt::format("{} {} not set", join_names(not_set, "and"), not_set.size() > 1 ? "are" : "is"));
      }
      if (modular_without_dir)
        why.push_back(
            fmt::format("{} and no modules directory was given (--kernel-modules)", join_names(problems, "and")));
      else
        why.insert(why.end(), problems.begin(), problems.end());
      s.detail = fmt::format("{}: {}", config.where, fmt::join(why, "; "));
      s.needs_modules_dir = modular_without_dir && not_set.empty();
      if (s.needs_modules_dir) {
        s.modular = problems;
        s.where = config.where;
      }
    } else if (!unknown.empty()) {
      s.verdict = FeatureState::Verdict::kUnknown;
      s.detail = config.source == ConfigSource::kNone
                     ? fmt::format("{}: cannot tell (no configuration found)", join_names(unknown, "and"))
                     : fmt::format("{}: cannot tell from {}", join_names(unknown, "and"), config.where);
    } else {
      s.verdict = FeatureState::Verdict::kOk;
      s.detail = fmt::format("{}", fmt::join(present, ", "));
    }
    out.push_back(std::move(s));
  }
  return out;
}

std::string kernel_display_name(const Kernel& kernel, const fs::path& named_image) {
  return named_image.empty() ? kernel.release : named_image.string();
}

namespace {

std::string modules_dir_hint(const Kernel& kernel) {
  fs::path guess = fs::path("/lib/modules") / kernel.release;
  std::error_code ec;
  if (!kernel.release.empty() && fs::is_directory(guess, ec)) return "--kernel-modules " + guess.string();
  return "--kernel-modules DIR (its lib/modules/RELEASE)";
}

constexpr std::string_view kOtherKernels =
    "Debian's linux-image-amd64 has them (kestrel kernel fetch; its cloud kernel lacks 9p); or build one: kestrel "
    "kernel build";

}  // namespace

std::string lacks_message(const Kernel& kernel, const fs::path& named_image, const std::vector<FeatureState>& states,
                          const Needs& needs) {
  std::vector<std::string> parts, modular_features, modular_options;
  std::string modular_where;
  for (const FeatureState& s : states) {
    if (s.verdict != FeatureState::Verdict::kMissing || !needs.wants(s.feature->need)) continue;
    if (s.needs_modules_dir) {  // said once for all of them
      modular_features.push_back(s.feature->what);
      modular_options.insert(modular_options.end(), s.modular.begin(), s.modular.end());
      modular_where = s.where;
      continue;
    }
    parts.push_back(fmt::format("{} ({}; {})", s.feature->what, option_list(*s.feature), s.detail));
  }
  bool lacking = !parts.empty();
  if (!modular_features.empty())
    parts.push_back(fmt::format("the modules of {} ({}: {}), and no modules directory was given",
                                join_names(modular_features, "and"), modular_where, fmt::join(modular_options, ", ")));
  if (parts.empty()) return "";
  std::string out = fmt::format("kernel {} lacks what kestrel needs: {}.", kernel_display_name(kernel, named_image),
                                fmt::join(parts, "; "));
  if (!modular_features.empty()) out += fmt::format(" Pass the kernel's modules: {}.", modules_dir_hint(kernel));
  if (lacking) out += fmt::format(" {}", kOtherKernels);
  return out;
}

std::string feature_fix(const FeatureState& s, const Kernel& kernel) {
  if (s.needs_modules_dir) return "pass the kernel's modules: " + modules_dir_hint(kernel);
  return fmt::format("a kernel with {}. {}", option_list(*s.feature), kOtherKernels);
}

bool keeps_pci_noacpi(const KernelConfig& config) { return !(config.complete() && config.state("X86_MPPARSE") == 'n'); }

}  // namespace kestrel::assets
