// recipe_digest (recipe.hpp): the cache key of the image a recipe builds.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <vector>

#include "image/recipe.hpp"
#include "util/error.hpp"
#include "util/fd.hpp"
#include "util/fs.hpp"
#include "util/io.hpp"
#include "util/sha256.hpp"

namespace kestrel::image {

namespace fs = std::filesystem;

namespace {

// One field of the digest's input, length-prefixed so that no two different
// recipes give the same byte stream.
void put(Sha256& h, std::string_view field, std::string_view value) {
  h.update(fmt::format("{} {}\n", field, value.size()));
  h.update(value);
  h.update("\n");
}

// SHA-256 of a file's content, read in pieces: files can be large.
std::string content_digest(const fs::path& path, bool follow) {
  // Never blocking: a file that reads like a stream (/proc/kmsg) is an error.
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC | (follow ? 0 : O_NOFOLLOW)));
  if (!fd) fail_errno("cannot open {}", path.string());
  Sha256 h;
  char buf[65536];
  for (;;) {
    ssize_t n = read_some(fd.get(), buf);
    if (n < 0) fail_errno("cannot read {}", path.string());
    if (n == 0) break;
    h.update(std::string_view(buf, static_cast<size_t>(n)));
  }
  return h.hex_digest();
}

// One entry of a `files` source: its type, mode bits and content. `rel` is
// its name relative to the source ("" for the source itself).
void put_entry(Sha256& h, const fs::path& path, std::string_view rel, const struct stat& st, bool follow) {
  std::string mode = fmt::format("{:o}", st.st_mode & 07777);
  if (S_ISREG(st.st_mode)) {
    put(h, "file", rel);
    put(h, "mode", mode);
    put(h, "content", content_digest(path, follow));
  } else if (S_ISDIR(st.st_mode)) {
    put(h, "dir", rel);
    put(h, "mode", mode);
  } else if (S_ISLNK(st.st_mode)) {
    std::error_code ec;
    fs::path target = fs::read_symlink(path, ec);
    if (ec) throw sys_error(ec.value(), "cannot read the symlink " + path.string());
    put(h, "symlink", rel);
    put(h, "target", target.string());
  } else {
    put(h, "special", rel);
    put(h, "mode", fmt::format("{:o}", st.st_mode));
  }
}

void put_source(Sha256& h, const fs::path& from) {
  struct stat st {};
  // The source itself is followed (a symlink stands for what it names);
  // entries below a directory are taken as they are.
  if (::stat(from.c_str(), &st) != 0) fail_errno("cannot read {}", from.string());
  put_entry(h, from, "", st, true);
  if (!S_ISDIR(st.st_mode)) return;
  std::vector<std::string> names;
  std::error_code ec;
  for (fs::recursive_directory_iterator it(from, ec), end; !ec && it != end; it.increment(ec))
    names.push_back(it->path().lexically_relative(from).generic_string());
  if (ec) throw sys_error(ec.value(), "cannot list " + from.string());
  std::ranges::sort(names);
  put(h, "entries", std::to_string(names.size()));
  for (const std::string& name : names) {
    fs::path path = from / name;
    if (::lstat(path.c_str(), &st) != 0) fail_errno("cannot read {}", path.string());
    put_entry(h, path, name, st, false);
  }
}

}  // namespace

void fail_at_file(const Recipe& recipe, const FileSpec& file, const std::string& message) {
  std::string text = message.starts_with("files: ") ? message : "files: " + message;
  throw Error(fmt::format("{}:{}: {}", recipe.path.string(), file.line, text));
}

std::string recipe_digest(const Recipe& recipe) {
  Sha256 h;
  put(h, "format", "kestrel-recipe-1");
  put(h, "name", recipe.name);
  put(h, "suite", recipe.suite);
  put(h, "mirror", recipe.mirror);
  put(h, "packages", std::to_string(recipe.packages.size()));
  for (const std::string& p : recipe.packages) put(h, "package", p);
  put(h, "size", std::to_string(recipe.size_bytes));
  put(h, "run", std::to_string(recipe.run.size()));
  for (const std::string& r : recipe.run) put(h, "command", r);
  put(h, "services", std::to_string(recipe.services.size()));
  for (const ServiceSpec& s : recipe.services) {
    put(h, "service", s.name);
    put(h, "command", s.command);
    put(h, "ready", s.ready.spec());
    put(h, "ready_timeout_ms", std::to_string(s.ready_timeout.count()));
  }
  put(h, "files", std::to_string(recipe.files.size()));
  for (const FileSpec& f : recipe.files) {
    put(h, "to", f.to);
    try {
      put_source(h, f.from);
    } catch (const Error& e) {
      fail_at_file(recipe, f, e.what());
    }
  }
  return h.hex_digest();
}

}  // namespace kestrel::image
