#include "image/rootfs.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>

#include "assets/command.hpp"
#include "image/copy_in.hpp"
#include "image/store.hpp"
#include "util/error.hpp"
#include "util/fs.hpp"
#include "util/strings.hpp"
#include "vm/disk.hpp"

namespace kestrel::image {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

namespace {

std::string join_with(const std::vector<std::string>& items, std::string_view sep) {
  std::string out;
  for (const auto& i : items) out += (out.empty() ? "" : std::string(sep)) + i;
  return out;
}

}  // namespace

void Progress::stage(const std::string& stage, const std::string& what) {
  current_ = stage;
  started_ = std::chrono::steady_clock::now();
  if (say) say(fmt::format("image {}: {}: {}", name, stage, what));
}

void Progress::done(const std::string& what) {
  double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - started_).count();
  if (say) say(fmt::format("image {}: {} done in {:.1f} s{}{}", name, current_, s, what.empty() ? "" : ", ", what));
}

std::optional<std::string> mmdebstrap_stage(const std::string& line) {
  if (!line.starts_with("I: ")) return std::nullopt;
  if (line.find("running apt-get update") != std::string::npos) return "resolve";
  if (line.find("downloading packages") != std::string::npos) return "download";
  if (line.find("extracting archives") != std::string::npos) return "unpack";
  return std::nullopt;
}

std::optional<std::string> missing_package(const std::vector<std::string>& lines) {
  // apt's messages (LC_ALL=C), e.g. "E: Unable to locate package foo".
  static const std::pair<std::string_view, std::string_view> kForms[] = {
      {"E: Unable to locate package ", ""},
      {"E: Package '", "'"},
      {"E: Couldn't find any package by glob '", "'"},
      {"E: Couldn't find any package by regex '", "'"},
  };
  for (const auto& line : lines) {
    size_t at = line.find("E: ");
    if (at == std::string::npos) continue;
    std::string_view l = std::string_view(line).substr(at);
    for (const auto& [prefix, end] : kForms) {
      if (!l.starts_with(prefix)) continue;
      std::string_view rest = l.substr(prefix.size());
      size_t stop = end.empty() ? rest.find_first_of(" \t") : rest.find(end);
      return std::string(rest.substr(0, stop));
    }
    // "E: Version '1.0' for 'foo' was not found"
    if (l.starts_with("E: Version '")) {
      size_t a = l.find("' for '");
      if (a != std::string_view::npos) {
        std::string_view rest = l.substr(a + 7);
        return std::string(rest.substr(0, rest.find('\'')));
      }
    }
  }
  return std::nullopt;
}

std::vector<std::string> mmdebstrap_argv(const Recipe& r, const fs::path& tar, bool as_root) {
  std::vector<std::string> argv = {"mmdebstrap", "--variant=apt", as_root ? "--mode=root" : "--mode=unshare",
                                   "--format=tar"};
  if (!r.packages.empty()) argv.push_back("--include=" + join_with(r.packages, ","));
  argv.push_back(r.suite);
  argv.push_back(tar.string());
  if (!r.mirror.empty()) argv.push_back(r.mirror);
  return argv;
}

std::vector<std::string> installed_packages(const std::string& status) {
  std::vector<std::string> out;
  std::string name, version;
  bool installed = false;
  auto end_stanza = [&] {
    if (installed && !name.empty()) out.push_back(name + "=" + version);
    name.clear();
    version.clear();
    installed = false;
  };
  for (const auto& line : split(status, '\n')) {
    if (trim(line).empty()) end_stanza();
    if (line.starts_with("Package: ")) name = std::string(trim(line.substr(9)));
    if (line.starts_with("Version: ")) version = std::string(trim(line.substr(9)));
    if (line.starts_with("Status: ")) installed = line.ends_with(" installed");
  }
  end_stanza();
  std::sort(out.begin(), out.end());
  return out;
}

namespace {

// Runs one step of a build with its output appended to the build's log
// (in the build's directory). Its program names it in messages (a script's
// command line is the whole script). A stop leaves it 20 s to clean up
// (mmdebstrap unmounts and removes its temporary tree), and nothing it
// started outlives it (as root: its own PID and mount namespace, which also
// holds the build's lock while any of it lives). As root, temporary files go
// into the build's directory, where gc and the next build find them.
assets::StreamedResult run_step(std::vector<std::string> argv, const fs::path& log, int signal_fd, Deadline deadline,
                                std::function<void(const std::string& line)> on_line = nullptr) {
  assets::StreamedCommand c;
  c.name = argv.at(0);
  c.argv = std::move(argv);
  c.log = log;
  c.contain = true;
  if (::geteuid() == 0) {
    // Not for others: mmdebstrap's unshare mode works as a subordinate root
    // that may not enter the build's directory; it removes its tree itself.
    fs::path tmp = log.parent_path() / "tmp";
    make_dirs(tmp, 0700);
    c.env = assets::c_locale_environment();
    std::erase_if(c.env, [](const std::string& v) { return v.starts_with("TMPDIR="); });
    c.env.push_back("TMPDIR=" + tmp.string());
  }
  c.on_line = std::move(on_line);
  c.signal_fd = signal_fd;
  c.deadline = deadline;
  c.stop_grace = 20s;
  return assets::run_streamed(c);
}

// Runs a shell script as root or, for other users, under fakeroot with its
// state kept in `state` between calls.
assets::StreamedResult run_script(const std::string& script, const std::vector<std::string>& args,
                                  const fs::path& state, const fs::path& log, int signal_fd) {
  std::vector<std::string> argv;
  if (::geteuid() != 0) {
    argv = {"fakeroot", "-s", state.string()};
    if (fs::exists(state)) argv.insert(argv.end(), {"-i", state.string()});
    argv.push_back("--");
  }
  argv.insert(argv.end(), {"sh", "-c", script, "sh"});
  argv.insert(argv.end(), args.begin(), args.end());
  return run_step(std::move(argv), log, signal_fd, Deadline::after(30min));
}

const char* kUnpackScript = R"SH(set -e
mkdir -p "$2"
tar -xpf "$1" -C "$2" --numeric-owner
)SH";

// No metadata checksums: the guest kernel would need the crc32c crypto
// module to mount the disk, and a throwaway test disk gains nothing by them.
const char* kDiskScript = R"SH(set -e
# mkfs.ext4 is in /sbin, which users' PATHs often lack.
PATH=$PATH:/usr/sbin:/sbin
mkfs.ext4 -q -F -m 0 -O ^metadata_csum -L kestrel-root -d "$1" "$2" "$3"
)SH";

uint64_t bytes_of(const fs::path& p) {
  struct stat st;
  return ::stat(p.c_str(), &st) == 0 ? static_cast<uint64_t>(st.st_size) : 0;
}

uint64_t file_blocks(const fs::path& p) {
  struct stat st;
  return ::stat(p.c_str(), &st) == 0 ? static_cast<uint64_t>(st.st_blocks) * 512 : 0;
}

}  // namespace

RootFs build_rootfs(const Recipe& r, const fs::path& work, Progress& progress) {
  bool as_root = ::geteuid() == 0;
  fs::path tar = work / "root.tar", tree = work / "tree", raw = work / "disk.raw", log = work / "build.log";
  fs::path state = work / "fakeroot.state";

  progress.stage("resolve", fmt::format("mmdebstrap {} ({} mode){}", r.suite, as_root ? "root" : "unshare",
                                        r.packages.empty() ? "" : " with " + join_with(r.packages, " ")));
  assets::StreamedResult strap = run_step(mmdebstrap_argv(r, tar, as_root), log, progress.signal_fd,
                                          Deadline::after(60min), [&](const std::string& line) {
                                            auto stage = mmdebstrap_stage(line);
                                            if (!stage || *stage == progress.current()) return;
                                            progress.done("");
                                            progress.stage(*stage, line.substr(3));
                                          });
  if (strap.status != 0) {
    std::vector<std::string> lines(strap.tail.begin(), strap.tail.end());
    if (auto pkg = missing_package(lines))
      fail("package {} does not exist in {} (apt: {})", *pkg, r.suite, [&] {
        for (const auto& l : lines)
          if (l.find("E: ") != std::string::npos) return l.substr(l.find("E: "));
        return std::string();
      }());
    std::string hint;
    if (!as_root && strap.tail_text(40).find("newuidmap") != std::string::npos)
      hint = "\nkestrel: unprivileged builds need the uidmap package and subordinate ids: run `kestrel doctor`";
    fail("mmdebstrap failed (exit status {}); its last lines:\n{}{}", strap.status, strap.tail_text(12), hint);
  }
  progress.done(fmt::format("root file system {}", human_size(bytes_of(tar))));

  progress.stage("image", fmt::format("ext4 of {} with mkfs.ext4 -d, then qcow2", human_size(r.size_bytes)));
  assets::StreamedResult unpack =
      run_script(kUnpackScript, {tar.string(), tree.string()}, state, log, progress.signal_fd);
  if (unpack.status != 0) fail("cannot unpack the root file system: {}", unpack.tail_text(8));
  fs::remove(tar);

  RootFs out;
  out.packages = installed_packages(read_file_if_exists(tree / "var/lib/dpkg/status").value_or(""));
  std::vector<std::string> args = {tree.string(), raw.string(), std::to_string(r.size_bytes / 1024) + "k"};
  // In this process, never a shell's cp: no link in the tree leads a copy out.
  for (const auto& f : r.files) {
    try {
      copy_into_tree(tree, f.from, f.to);
    } catch (const Error& e) {
      fail_at_file(r, f, e.what());
    }
  }
  assets::StreamedResult disk = run_script(kDiskScript, args, state, log, progress.signal_fd);
  if (disk.status != 0) {
    std::string text = disk.tail_text(8);
    if (text.find("Could not allocate") != std::string::npos || text.find("No space left") != std::string::npos)
      fail("the image does not fit in size = {} of {}; make `size` larger:\n{}", human_size(r.size_bytes),
           r.path.string(), text);
    fail("cannot make the ext4 file system: {}", text);
  }
  remove_tree(tree);
  out.disk = work / "disk.qcow2";
  vm::convert_to_qcow2(raw, out.disk);
  fs::remove(raw);
  progress.done(fmt::format("{} packages, {} on disk", out.packages.size(), human_size(file_blocks(out.disk))));
  return out;
}

}  // namespace kestrel::image
