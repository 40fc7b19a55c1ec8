// The cache of built images (docs/images.md): cache_dir()/images/
//   <id>/disk.qcow2     the root file system (ext4 in qcow2), read-only once made
//   <id>/image.json     what it is: name, recipe, packages with versions, services, stamps
//   <id>/recipe.toml    a copy of the recipe it was built from
//   refs/<digest>       the id of the current image of a recipe (by recipe_digest)
//   locks/<digest>.lock held by the one process that builds a recipe
//   .build-<digest>/    where that process assembles an image
// An image is never written after it is made: every VM reads it through a
// qcow2 overlay of its own (or of its template's), and `--refresh` makes a
// new image instead of changing one.
#pragma once

#include <filesystem>
#include <functional>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "host/machine.hpp"

namespace kestrel::image {

namespace fs = std::filesystem;

// Bump when the layout or the disk's contract with the agent changes.
constexpr int kImageFormat = 1;

fs::path images_dir();

struct ImageFiles {
  fs::path dir;
  fs::path disk() const { return dir / "disk.qcow2"; }
  fs::path meta() const { return dir / "image.json"; }
  fs::path recipe() const { return dir / "recipe.toml"; }
};

struct ImageInfo {
  std::string id;
  ImageFiles files;
  nlohmann::json meta;
  std::string name;
  std::string recipe_digest;
  int64_t created = 0;      // unix seconds
  uint64_t disk_bytes = 0;  // blocks used by the directory
  // Its recipe's ref names it, and it is the newest image of its recipe file:
  // not superseded by --refresh or by an edit of the recipe.
  bool current = false;
};

ImageFiles image_files(const std::string& id);
fs::path recipe_ref(const std::string& digest);
fs::path recipe_lock(const std::string& digest);
fs::path build_dir(const std::string& digest);

// Reads an image directory; throws Error saying what is wrong with it.
ImageInfo read_image(const fs::path& dir);

// Every complete image, newest first.
std::vector<ImageInfo> list_images();

// The current image of a recipe, if built and intact.
std::optional<ImageInfo> find_built(const std::string& recipe_digest);
// An image by name (the newest current one of that name) or by id (or a
// unique prefix of at least 6 digits). nullopt if none.
std::optional<ImageInfo> find_image(const std::string& name_or_id);

// Makes `id` the current image of its recipe.
void set_ref(const std::string& recipe_digest, const std::string& id);

// What a VM booting from the image needs (host/machine.hpp).
host::DiskImage disk_image(const ImageInfo& image);

// The VMs (deployment dir + VM name) whose root disk is `id` and that are
// still running; and the templates built from it.
struct ImageUser {
  fs::path deployment;
  std::string vm;
};
std::vector<ImageUser> image_users(const std::string& id);
std::vector<fs::path> image_templates(const std::string& id);

// Removes an image and its templates. Throws Error naming the VMs that use
// it, if any (nothing is removed then).
void remove_image(const ImageInfo& image);

// `kestrel gc`/`cache clear`: images no VM uses that are superseded
// (gc), or all of them (clear); and abandoned builds. Returns what was removed.
struct ImageSweep {
  size_t removed = 0;
  size_t in_use = 0;
  size_t builds_removed = 0;
};
ImageSweep sweep_images(bool all, const std::function<void(const ImageInfo&)>& on_removed = {});

// What image builds that died left (their directories, temporary trees
// included): those whose recipe's lock nobody holds. A build's processes
// hold it as long as any of them lives, so none of these is being written.
std::vector<std::filesystem::path> abandoned_image_builds();

// "1.2 GB", "512 MB": sizes in messages and listings.
std::string human_size(uint64_t bytes);

}  // namespace kestrel::image
