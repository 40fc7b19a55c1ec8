#include "vm/disk.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>

#include "assets/command.hpp"
#include "util/error.hpp"
#include "util/fs.hpp"

namespace kestrel::vm {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

std::string find_qemu_img() {
  if (const char* env = std::getenv("KESTREL_QEMU_IMG"); env && *env) return env;
  if (auto found = find_in_path("qemu-img")) return *found;
  fail("qemu-img not found in PATH; install it: sudo apt-get install qemu-utils");
}

namespace {

void run_qemu_img(const std::vector<std::string>& argv, const char* what, Deadline deadline) {
  assets::CommandResult r = assets::run_command(argv, {}, deadline);
  if (r.status != 0) fail("cannot {}: {}", what, assets::command_failure(argv, r));
}

}  // namespace

void create_overlay(const fs::path& backing, const fs::path& overlay) {
  if (!backing.is_absolute())
    fail("cannot create disk {}: backing file {} is not absolute", overlay.string(), backing.string());
  std::error_code ec;
  fs::remove(overlay, ec);
  // The backing file is named as given: qemu-img and QEMU resolve it
  // absolutely, wherever the overlay lives.
  run_qemu_img(
      {find_qemu_img(), "create", "-q", "-f", "qcow2", "-F", "qcow2", "-b", backing.string(), overlay.string()},
      "create a disk overlay", Deadline::after(30s));
  if (::chmod(overlay.c_str(), 0600) != 0) fail_errno("cannot chmod {}", overlay.string());
}

void convert_to_qcow2(const fs::path& raw, const fs::path& qcow2) {
  run_qemu_img({find_qemu_img(), "convert", "-q", "-f", "raw", "-O", "qcow2", raw.string(), qcow2.string()},
               "convert the image to qcow2", Deadline::after(30min));
}

}  // namespace kestrel::vm
