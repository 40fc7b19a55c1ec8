// Image recipes: a TOML file (e.g. images/pg.toml in a project) that
// describes a Debian root file system image kestrel builds with mmdebstrap.
//
//   name = "pg"          # optional; default: the file's stem.
//                        # [a-z0-9][a-z0-9._-]{0,62}
//   suite = "bookworm"   # optional; default: the host's Debian codename
//                        # (VERSION_CODENAME in /etc/os-release, ID=debian only)
//   mirror = "http://deb.debian.org/debian"   # optional; default: mmdebstrap's
//                        # (deb.debian.org with the release's -updates and
//                        # -security suites); an http:// or https:// URL, no
//                        # spaces or commas, used alone
//   packages = ["postgresql", "libpq5=15.6-0+deb12u1"]
//                        # Debian package names, each optionally "=VERSION";
//                        # one package per string (no commas or spaces)
//   size = "2G"          # optional ext4 size: integer bytes, or a string of
//                        # bytes with an optional K/M/G suffix (powers of 1024);
//                        # default 2G, at least 64M, at most 1024G
//   run = ["sed -i ... /etc/postgresql/15/main/pg_hba.conf"]
//                        # optional shell commands, run in order as root in a
//                        # VM booted from the image
//
//   [files]              # optional: host path -> absolute path in the image.
//   "conf/app.conf" = "/etc/app.conf"
//                        # The host path is relative to the recipe's directory
//                        # (or absolute) and must exist: a file or a directory
//                        # (copied with its contents). The image path must be
//                        # absolute, not "/", with no ".." component.
//
//   [[service]]          # zero or more services, started when the image boots
//   name = "postgresql"  # required; the same rule as the recipe's name; unique
//   command = "pg_ctlcluster 15 main start"   # required shell command
//   ready = "tcp:5432"   # optional readiness check:
//                        #   "tcp:PORT"           something listens on PORT (1-65535)
//                        #   "unix:/abs/path"     a unix socket accepts connections
//                        #   "/abs/path"          the same as "unix:/abs/path"
//                        #   "command:SHELL CMD"  the command exits with status 0
//   ready_timeout = 60   # optional seconds, integer or float, > 0 and <= 3600;
//                        # default 60
//
// Unknown keys and wrong types are errors. Every error names the file and
// the line of the offending key or value: "PATH:LINE: message" (a TOML syntax
// error: the line toml++ reports). Only errors that belong to no line (the
// default name or suite cannot be had) are "PATH: message".
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

namespace kestrel::image {

// How kestrel tells that a service is up.
struct ReadyCheck {
  enum class Kind { kNone, kTcp, kUnix, kCommand };
  Kind kind = Kind::kNone;
  uint16_t port = 0;    // kTcp
  std::string path;     // kUnix: absolute, lexically normal
  std::string command;  // kCommand: a shell command

  // Back to the recipe's form: "tcp:5432", "unix:/run/x.sock", "command:..."
  // ("" for kNone). parse_ready(spec()) gives the check back.
  std::string spec() const;

  bool operator==(const ReadyCheck&) const = default;
};

// Parses a `ready` value; "" is kNone. Throws Error with a message that has
// no "PATH:LINE:" (load_recipe adds it).
ReadyCheck parse_ready(std::string_view spec);

struct ServiceSpec {
  std::string name;
  std::string command;
  ReadyCheck ready;
  std::chrono::milliseconds ready_timeout{60000};
};

// One [files] entry.
struct FileSpec {
  std::filesystem::path from;  // host path: absolute, lexically normal
  std::string to;              // image path: absolute, lexically normal, not "/"
  int line = 0;                // where the recipe names it
};

struct Recipe {
  std::filesystem::path path;  // absolute path of the recipe file
  std::string name;
  std::string suite;
  std::string mirror;
  std::vector<std::string> packages;  // in the recipe's order
  // Sorted by `to`, component by component: copying them in this order puts
  // a file placed inside a copied directory over the directory's own copy.
  std::vector<FileSpec> files;
  std::vector<std::string> run;  // in the recipe's order
  uint64_t size_bytes = 2ull << 30;
  std::vector<ServiceSpec> services;  // in the recipe's order
};

// An error about one of a recipe's `files` (reading its source, copying it
// into an image), as every other recipe error: "PATH:LINE: message".
[[noreturn]] void fail_at_file(const Recipe& recipe, const FileSpec& file, const std::string& message);

// Reads and validates a recipe file. A missing file is an Error
// "cannot read recipe PATH: No such file or directory". `os_release` is where
// the default suite comes from (tests pass a fake one).
Recipe load_recipe(const std::filesystem::path& file, const std::filesystem::path& os_release = "/etc/os-release");

// The same, from the file's text: `file` names the recipe in messages, gives
// the default name and is the base of relative `files` paths.
Recipe parse_recipe(std::string_view text, const std::filesystem::path& file,
                    const std::filesystem::path& os_release = "/etc/os-release");

// The host's Debian codename: VERSION_CODENAME in os-release when ID=debian.
// Throws Error, saying to set `suite` in the recipe, when it cannot be had.
std::string host_suite(const std::filesystem::path& os_release = "/etc/os-release");

// The key of the image a recipe builds: SHA-256 (hex) over a canonical
// serialisation of everything that shapes the image, so an image can be
// cached by it: a format tag, name, suite, mirror, packages (in order), size,
// run, the services (all fields), and for each file its image path, mode bits
// and content (for a directory, every entry below it, sorted, with relative
// names, types, modes, symlink targets and file contents). It does not
// depend on where the recipe or its files lie, nor on the TOML's layout or
// comments. Reads the files; throws Error when one cannot be read.
std::string recipe_digest(const Recipe& recipe);

}  // namespace kestrel::image
