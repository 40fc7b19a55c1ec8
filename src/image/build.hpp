// `kestrel image build` and the first `kestrel run --image` of a recipe
// (docs/images.md): the recipe's image from the cache, or built once however
// many runs ask at the same time, in stages with progress: resolve,
// download, unpack (mmdebstrap), image (ext4, qcow2), provision (the
// recipe's `run` commands in a VM booted from the image), then services and
// snapshot (the warm-start template, services running).
#pragma once

#include <functional>
#include <string>

#include "host/machine.hpp"
#include "image/recipe.hpp"
#include "image/store.hpp"

namespace kestrel::image {

struct BuildOptions {
  bool refresh = false;  // build anew with the latest packages, even if the recipe's image exists
  // The VM settings of provisioning and of the template (kernel, accelerator,
  // memory, CPUs, notice, signal_fd); name, paths and image are filled in.
  host::BootOptions vm;
  std::function<void(const std::string&)> say;  // progress lines
};

// The recipe's current image, built if there is none (or with `refresh`).
// `built` tells whether this call built it. A failed build leaves no
// partial image, no VM and no temporary tree, and names what failed.
ImageInfo ensure_image(const Recipe& recipe, const BuildOptions& options, bool* built = nullptr);

// Boots a VM of `image` with the settings of `options.vm`, which saves its
// warm-start template on the way (services started and ready), then tears
// it down. Runs with the same settings start warm from it.
void prepare_template(const ImageInfo& image, const BuildOptions& options);

// `--image VALUE` (or `image =`): a recipe file (a path, or a name ending in
// .toml) or the name or id of a built image.
bool names_recipe(const std::string& value);

// The image `value` names: a recipe's current image (built now if needed,
// its template too), or a built image by name or id. Throws Error saying how
// to get one.
ImageInfo resolve_image(const std::string& value, const BuildOptions& options);

}  // namespace kestrel::image
