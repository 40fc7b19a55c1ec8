#include "assets/kernel_store.hpp"

#include <sys/stat.h>

#include <cstdio>
#include <nlohmann/json.hpp>

#include "assets/cache.hpp"
#include "util/error.hpp"
#include "util/fs.hpp"
#include "util/random.hpp"

namespace kestrel::assets {

namespace fs = std::filesystem;
using nlohmann::json;

fs::path kernels_dir() {
  fs::path dir = cache_dir() / "kernels";
  make_dirs(dir, 0755);
  return dir;
}

std::string kernel_record_json(const KernelRecord& record) {
  json modules = json::array();
  for (const KernelRecord::Module& m : record.modules)
    modules.push_back({{"name", m.name}, {"file", m.file}, {"depends", m.depends}});
  json j = {{"format", kKernelRecordFormat}, {"release", record.release}, {"kind", record.kind},
            {"package", record.package},     {"version", record.version}, {"deb", record.deb},
            {"image", record.image},         {"pvh", record.pvh},         {"modules", modules}};
  if (record.kind == "lean") {
    j["key"] = record.key;
    j["compiler"] = record.compiler;
    j["built"] = record.built;
  }
  return j.dump(2) + "\n";
}

std::optional<KernelRecord> read_kernel_record(const fs::path& dir) {
  std::optional<std::string> text;
  try {
    text = read_file_if_exists(dir / "kernel.json");
  } catch (const Error&) {
    return std::nullopt;
  }
  if (!text) return std::nullopt;
  try {
    json j = json::parse(*text);
    if (j.at("format").get<int>() != kKernelRecordFormat) return std::nullopt;
    KernelRecord r;
    r.release = j.at("release").get<std::string>();
    r.kind = j.value("kind", "debian");
    r.package = j.value("package", "");
    r.version = j.value("version", "");
    r.deb = j.value("deb", "");
    r.image = j.value("image", "vmlinux");
    r.pvh = j.value("pvh", false);
    if (r.image.empty() || r.image.find('/') != std::string::npos) return std::nullopt;
    for (const json& m : j.value("modules", json::array()))
      r.modules.push_back({m.at("name").get<std::string>(), m.at("file").get<std::string>(),
                           m.value("depends", std::vector<std::string>{})});
    r.key = j.value("key", "");
    r.compiler = j.value("compiler", "");
    r.built = j.value("built", int64_t{0});
    if (r.release.empty() || (r.kind != "debian" && r.kind != "lean")) return std::nullopt;
    return r;
  } catch (const json::exception&) {
    return std::nullopt;
  }
}

Kernel cached_kernel(const fs::path& dir, const KernelRecord& record) {
  Kernel k;
  k.release = record.release;
  k.image = dir / record.image;
  k.pvh = record.pvh;
  k.modules_dir = dir / "modules";
  k.lean = record.kind == "lean";
  k.source = (k.lean ? "lean:" : "debian:") + record.deb;
  return k;
}

void install_kernel_dir(TempDir& staged, const fs::path& final_dir) {
  if (::chmod(staged.path().c_str(), 0755) != 0) fail_errno("cannot chmod {}", staged.path().string());
  std::error_code ec;
  fs::path old;
  if (fs::exists(final_dir, ec)) {
    old = final_dir.parent_path() / (".old-" + final_dir.filename().string() + "-" + random_hex(8));
    if (::rename(final_dir.c_str(), old.c_str()) != 0) fail_errno("cannot move {} aside", final_dir.string());
  }
  if (::rename(staged.path().c_str(), final_dir.c_str()) != 0)
    fail_errno("cannot rename {} to {}", staged.path().string(), final_dir.string());
  staged.keep();
  if (!old.empty()) remove_tree(old);
}

int compare_versions(std::string_view a, std::string_view b) {
  auto is_digit = [](char c) { return c >= '0' && c <= '9'; };
  size_t i = 0, j = 0;
  while (i < a.size() && j < b.size()) {
    if (is_digit(a[i]) && is_digit(b[j])) {
      size_t i_end = i, j_end = j;
      while (i_end < a.size() && is_digit(a[i_end])) ++i_end;
      while (j_end < b.size() && is_digit(b[j_end])) ++j_end;
      std::string_view x = a.substr(i, i_end - i), y = b.substr(j, j_end - j);
      while (x.size() > 1 && x[0] == '0') x.remove_prefix(1);
      while (y.size() > 1 && y[0] == '0') y.remove_prefix(1);
      if (x.size() != y.size()) return x.size() < y.size() ? -1 : 1;
      if (int c = x.compare(y)) return c < 0 ? -1 : 1;
      i = i_end;
      j = j_end;
    } else {
      if (a[i] != b[j]) return static_cast<unsigned char>(a[i]) < static_cast<unsigned char>(b[j]) ? -1 : 1;
      ++i;
      ++j;
    }
  }
  if (i < a.size()) return 1;
  if (j < b.size()) return -1;
  return 0;
}

}  // namespace kestrel::assets
