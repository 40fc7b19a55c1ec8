#include "image/store.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <set>

#include "assets/cache.hpp"
#include "assets/file_stamp.hpp"
#include "deploy/registry.hpp"
#include "host/template_store.hpp"
#include "util/error.hpp"
#include "util/fs.hpp"
#include "util/json.hpp"
#include "util/lockfile.hpp"

namespace kestrel::image {

namespace {

using nlohmann::json;
using namespace std::chrono_literals;

constexpr std::string_view kBuildPrefix = ".build-", kTrashPrefix = ".trash-";

bool is_id(std::string_view s) {
  return s.size() == 16 && std::all_of(s.begin(), s.end(), [](char c) { return std::isxdigit(c) && !std::isupper(c); });
}

std::optional<std::string> read_ref(const std::string& digest) {
  try {
    auto text = read_file_if_exists(recipe_ref(digest));
    if (!text) return std::nullopt;
    std::string id = text->substr(0, text->find('\n'));
    return is_id(id) ? std::optional(id) : std::nullopt;
  } catch (const Error&) {
    return std::nullopt;
  }
}

}  // namespace

fs::path images_dir() { return assets::cache_dir() / "images"; }
ImageFiles image_files(const std::string& id) { return {images_dir() / id}; }
fs::path recipe_ref(const std::string& digest) { return images_dir() / "refs" / digest; }
fs::path recipe_lock(const std::string& digest) { return images_dir() / "locks" / (digest + ".lock"); }
fs::path build_dir(const std::string& digest) { return images_dir() / (std::string(kBuildPrefix) + digest); }

ImageInfo read_image(const fs::path& dir) {
  ImageInfo info;
  info.id = dir.filename().string();
  info.files = {dir};
  auto text = read_file_if_exists(info.files.meta());
  if (!text) fail("image {}: image.json is missing", dir.string());
  info.meta = parse_json(*text);
  if (!info.meta.is_object() || info.meta.value("format", 0) != kImageFormat || info.meta.value("id", "") != info.id)
    fail("image {}: image.json is not of this kestrel", dir.string());
  if (!assets::same_stamp(info.meta["disk"], info.files.disk()))
    fail("image {}: its disk {} was changed or removed after it was built", dir.string(), info.files.disk().string());
  info.name = info.meta.value("name", "");
  info.recipe_digest = info.meta.value("recipe_digest", "");
  info.created = info.meta.value("created", int64_t{0});
  info.disk_bytes = blocks_in_dir(dir);
  info.current = read_ref(info.recipe_digest) == info.id;
  return info;
}

std::vector<ImageInfo> list_images() {
  std::vector<ImageInfo> out;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(images_dir(), ec)) {
    if (!is_id(entry.path().filename().string()) || !entry.is_directory(ec)) continue;
    try {
      out.push_back(read_image(entry.path()));
    } catch (const Error&) {
      // Damaged or half-removed: `image ls` shows only what can be used.
    }
  }
  std::sort(out.begin(), out.end(), [](const ImageInfo& a, const ImageInfo& b) { return a.created > b.created; });
  // An image of a recipe file that has a newer image (the file was edited
  // since) is superseded too, like one that --refresh replaced.
  std::set<std::string> newer;
  for (auto& i : out) {
    std::string recipe = i.meta.value("recipe", "");
    if (!recipe.empty() && !newer.insert(recipe).second) i.current = false;
  }
  return out;
}

std::optional<ImageInfo> find_built(const std::string& digest) {
  auto id = read_ref(digest);
  if (!id) return std::nullopt;
  try {
    return read_image(image_files(*id).dir);
  } catch (const Error&) {
    return std::nullopt;
  }
}

std::optional<ImageInfo> find_image(const std::string& name_or_id) {
  auto all = list_images();
  for (const auto& i : all)
    if (i.name == name_or_id && i.current) return i;
  for (const auto& i : all)
    if (i.name == name_or_id) return i;
  if (name_or_id.size() < 6) return std::nullopt;
  std::optional<ImageInfo> found;
  for (const auto& i : all) {
    if (!i.id.starts_with(name_or_id)) continue;
    if (found) fail("image id prefix {} is ambiguous ({} and {})", name_or_id, found->id, i.id);
    found = i;
  }
  return found;
}

void set_ref(const std::string& digest, const std::string& id) {
  make_dirs(recipe_ref(digest).parent_path(), 0755);
  write_file_atomic(recipe_ref(digest), id + "\n", 0644);
}

host::DiskImage disk_image(const ImageInfo& image) {
  host::DiskImage d;
  d.base = image.files.disk();
  d.id = image.id;
  d.name = image.name;
  for (const auto& s : image.meta.value("services", json::array())) {
    proto::ServiceRequest r;
    r.name = s.value("name", "");
    r.command = s.value("command", "");
    r.ready = s.value("ready", "");
    r.timeout_ms = s.value("ready_timeout_ms", uint32_t{60000});
    d.services.push_back(std::move(r));
  }
  return d;
}

std::vector<ImageUser> image_users(const std::string& id) {
  std::vector<ImageUser> out;
  for (const auto& d : deploy::list_deployments()) {
    if (!d.state) continue;
    bool alive = !d.live_pids.empty() || d.liveness == deploy::Liveness::kRunning;
    if (!alive) continue;
    for (const auto& vm : d.state->vms)
      if (vm.image == id) out.push_back({d.dir, vm.name});
  }
  return out;
}

std::vector<fs::path> image_templates(const std::string& id) {
  std::vector<fs::path> out;
  for (const auto& t : host::list_templates())
    if (t.meta.is_object() && t.meta.value("image", "") == id) out.push_back(t.dir);
  return out;
}

void remove_image(const ImageInfo& image) {
  auto users = image_users(image.id);
  if (!users.empty()) {
    std::string list;
    for (const auto& u : users) list += fmt::format("\n  VM {} (deployment dir {})", u.vm, u.deployment.string());
    fail("image {} ({}) is in use by {} running VM(s); destroy them first (kestrel destroy -f DIR):{}", image.name,
         image.id, users.size(), list);
  }
  for (const auto& t : image_templates(image.id))
    if (host::remove_template(t, Deadline::after(2s)) == host::Removal::kInUse)
      fail("image {} ({}): a run is starting from its template {} right now; try again", image.name, image.id,
           t.string());
  // A run holds the image shared while it boots; the removal takes it
  // exclusively and moves the directory aside first, as for templates.
  if (host::remove_template(image.files.dir) == host::Removal::kInUse)
    fail("image {} ({}): a run is starting from it right now; try again", image.name, image.id);
  if (read_ref(image.recipe_digest) == image.id) {
    std::error_code ec;
    fs::remove(recipe_ref(image.recipe_digest), ec);
  }
}

ImageSweep sweep_images(bool all, const std::function<void(const ImageInfo&)>& on_removed) {
  ImageSweep out;
  for (const auto& image : list_images()) {
    if (!all && image.current) continue;
    try {
      remove_image(image);
      ++out.removed;
      if (on_removed) on_removed(image);
    } catch (const Error&) {
      ++out.in_use;
    }
  }
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(images_dir(), ec)) {
    std::string name = entry.path().filename().string();
    if (name.starts_with(kBuildPrefix)) {
      // Its builder holds the recipe's lock for as long as it lives.
      LockFile lock = LockFile::try_lock(recipe_lock(name.substr(kBuildPrefix.size())));
      if (!lock.locked()) continue;
      remove_tree_one_fs(entry.path());
      ++out.builds_removed;
    } else if (name.starts_with(kTrashPrefix)) {
      // An interrupted removal's leftover; its remover held it while alive.
      LockFile lock = LockFile::lock_existing(entry.path(), Deadline::after(0ms), LockFile::Mode::kExclusive);
      if (lock.locked()) remove_tree(entry.path());
    }
  }
  return out;
}

std::vector<fs::path> abandoned_image_builds() {
  std::vector<fs::path> out;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(images_dir(), ec)) {
    std::string name = entry.path().filename().string();
    if (!name.starts_with(kBuildPrefix)) continue;
    if (LockFile::try_lock(recipe_lock(name.substr(kBuildPrefix.size()))).locked()) out.push_back(entry.path());
  }
  std::ranges::sort(out);
  return out;
}

std::string human_size(uint64_t bytes) {
  double v = static_cast<double>(bytes);
  if (v >= 1024.0 * 1024 * 1024) return fmt::format("{:.1f} GiB", v / (1024.0 * 1024 * 1024));
  return fmt::format("{:.1f} MiB", v / (1024.0 * 1024));
}

}  // namespace kestrel::image
