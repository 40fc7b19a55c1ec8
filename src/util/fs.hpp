// File-system helpers that throw kestrel::Error with the path in the message.
#pragma once

#include <sys/types.h>

#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace kestrel {

namespace fs = std::filesystem;

std::string read_file(const fs::path& path);
// Returns nullopt if the file does not exist; throws on other errors.
std::optional<std::string> read_file_if_exists(const fs::path& path);

// A regular file of at most `limit` bytes, read whole (/proc and /sys files
// too, whatever size they report); nullopt when it is missing, not a regular
// file (a FIFO is never opened for reading: no hang), larger than `limit`
// (read no further), unreadable, or (`follow` false) a symlink.
std::optional<std::string> read_small_file(const fs::path& path, size_t limit, bool follow = true);

// Writes to "<path>.tmp.<pid>" then renames over path, so readers never see
// a half-written file. `mode` applies to the new file.
void write_file_atomic(const fs::path& path, std::string_view data, mode_t mode = 0644);

// True if `path` is `dir` or lies below it, comparing the paths as given
// (canonicalize both first where symlinks matter).
bool path_within(const fs::path& path, const fs::path& dir);

// mkdir -p with a mode for the directories it creates.
void make_dirs(const fs::path& path, mode_t mode = 0755);

// rm -rf that never follows symlinks and tolerates a missing path.
void remove_tree(const fs::path& path);

// `name` looked up as an executable in $PATH (empty entries are "."; no
// PATH: /usr/bin:/bin); nullopt if not found.
std::optional<std::string> find_in_path(const std::string& name);

// The disk space (allocated blocks) of the files directly in `dir`, for
// listings of cache entries (sparse files count what they use).
uint64_t blocks_in_dir(const fs::path& dir);

// rm -rf for a tree that someone else may have written into (a guest):
// - never follows a symlink (it removes the link) and checks that each
//   directory it opens is the one it listed;
// - stays on path's file system: a mount point inside is an error and is
//   left alone (like `rm --one-file-system`);
// - makes a directory of ours u+rwx before descending, so a `chmod 000`
//   subdirectory cannot make the tree unremovable;
// - is bounded: a constant number of fds and no recursion whatever the
//   depth, at most 65536 levels, and a directory that keeps refilling while
//   it is emptied is given up after 3 listings.
// A missing path is fine. Throws naming the first entry it could not remove.
void remove_tree_one_fs(const fs::path& path);

// The names in an open directory (not . and ..), read from a duplicate of
// `fd` rewound first; `shown()` names it in errors.
std::vector<std::string> list_dir_fd(int fd, const std::function<std::string()>& shown);

// A fresh directory that is removed with its contents when the owner dies,
// unless keep() was called.
class TempDir {
 public:
  // Creates "<parent>/<prefix>XXXXXX".
  TempDir(const fs::path& parent, std::string_view prefix);
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  TempDir(TempDir&& other) noexcept : path_(std::move(other.path_)) { other.path_.clear(); }
  ~TempDir();

  const fs::path& path() const { return path_; }
  // Stop owning the directory: it outlives this object.
  fs::path keep() { return std::exchange(path_, fs::path()); }

 private:
  fs::path path_;
};

}  // namespace kestrel
