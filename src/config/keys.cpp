#include "config/keys.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <filesystem>

#include "util/error.hpp"
#include "util/strings.hpp"

namespace kestrel::config {

const std::vector<Key>& keys() {
  static const std::vector<Key> table = {
      {.name = "memory",
       .type = Type::kCount,
       .fallback = "1024",
       .env = "KESTREL_MEMORY",
       .option = "--mem",
       .help = "guest memory in MiB (the guest kernel and its initramfs need about 96 to boot; 128 leaves the "
               "program some 45). The default fits suites with a test binary of a few hundred MiB beside "
               "its server; a guest's unused memory costs the host nothing (docs/guest.md, \"Memory\")",
       .min = 128,
       .max = 1 << 20},
      {.name = "cpus",
       .type = Type::kCount,
       .fallback = "1",
       .env = "KESTREL_CPUS",
       .option = "--cpus",
       .help = "virtual CPUs (under TCG at most 4 per host CPU: more do not boot within the boot timeout)",
       .min = 1,
       .max = 64},
      {.name = "kernel",
       .type = Type::kText,
       .fallback = "",
       .env = "KESTREL_KERNEL",
       .option = "--kernel",
       .help = "guest kernel: empty for Debian's (the newest release `kestrel kernel fetch` cached), `lean` for "
               "the lean kernel (`kestrel kernel build`; the newest version's latest build), a release that "
               "`kestrel kernel ls` lists, or a path to a vmlinux/bzImage (a value with a `/`, or naming an "
               "existing file)",
       .path_like = true},
      {.name = "kernel_modules",
       .type = Type::kText,
       .fallback = "",
       .env = "KESTREL_KERNEL_MODULES",
       .option = "--kernel-modules",
       .help = "directory of modules for a kernel given as a path",
       .path_like = true},
      {.name = "kernel_args",
       .type = Type::kText,
       .fallback = "",
       .env = "KESTREL_KERNEL_ARGS",
       .option = "--append",
       .help = "arguments for the guest kernel's command line, added after kestrel's own (so a parameter given "
               "again here wins; docs/guest.md, \"Kernel command line\", says what kestrel's are for); the whole "
               "line must fit in Linux's 2047 bytes",
       .max = 2048},
      {.name = "timeout",
       .type = Type::kSeconds,
       .fallback = "0",
       .env = "KESTREL_TIMEOUT",
       .option = "--timeout",
       .help = "kill the program after this many seconds (exit status 124); 0: no limit",
       .min = 0,
       .max = kMaxSeconds},
      {.name = "keep",
       .type = Type::kChoice,
       .fallback = "on-failure",
       .env = "KESTREL_KEEP",
       .option = "--keep",
       .help = "keep the VM running after the program: on-failure, always or never",
       .choices = "on-failure|always|never"},
      {.name = "slots",
       .type = Type::kCount,
       .fallback = "0",
       .env = "KESTREL_SLOTS",
       .option = "",
       .help = "how many VMs of this user run programs at once (others wait); 0: one per CPU, as far as "
               "half the available memory allows",
       .min = 0,
       .max = 4096},
      {.name = "accel",
       .type = Type::kChoice,
       .fallback = "auto",
       .env = "KESTREL_ACCEL",
       .option = "",
       .help = "accelerator: auto (KVM where it can boot a standard kernel, else TCG), kvm or tcg",
       .choices = "auto|kvm|tcg"},
      {.name = "network",
       .type = Type::kChoice,
       .fallback = "none",
       .env = "KESTREL_NETWORK",
       .option = "--network",
       .help = "the VM's network: none (no NIC; loopback works, and a connection to any other address goes "
               "nowhere and waits for its timeout, as on a host whose network is down) or user (QEMU's user-mode "
               "network: address 10.0.2.15, the host's own services at 10.0.2.2, DNS at 10.0.2.3); a topology's "
               "nodes take `uplink = true` instead",
       .choices = "none|user"},
      {.name = "list_on_host",
       .type = Type::kSwitch,
       .fallback = "true",
       .env = "KESTREL_LIST_ON_HOST",
       .option = "--list-in-vm",
       .help = "run test-listing invocations (--list, --gtest_list_tests, -test.list) directly on the host, "
               "without a VM",
       .flag_sets = "false",
       .flag_help = "run test-listing invocations in the VM as well"},
      {.name = "warm",
       .type = Type::kSwitch,
       .fallback = "true",
       .env = "KESTREL_WARM",
       .option = "--cold",
       .help = "start VMs as clones of a template of their configuration (built on first use) instead of "
               "booting them",
       .flag_sets = "false",
       .flag_help = "boot the VM from scratch instead of restoring a clone of its configuration's template"},
      {.name = "env.pass",
       .type = Type::kPatterns,
       .fallback = "*",
       .env = "KESTREL_ENV_PASS",
       .option = "",
       .help = "host environment variables the program gets (* and ? are wildcards)"},
      {.name = "env.deny",
       .type = Type::kPatterns,
       .fallback = "",
       .env = "KESTREL_ENV_DENY",
       .option = "",
       .help = "variables withheld from the program, on top of the built-in list in `kestrel run --help`"},
      {.name = "share",
       .type = Type::kShares,
       .fallback = "",
       .env = "KESTREL_SHARE",
       .option = "--share",
       .help = "extra host paths mounted in the VM at the same path: PATH:ro (writes fail) or PATH:rw "
               "(writes reach the host); without :ro/:rw read-only",
       .path_like = true},
      {.name = "image",
       .type = Type::kText,
       .fallback = "",
       .env = "KESTREL_IMAGE",
       .option = "--image",
       .help = "the VM's root file system: a recipe file (e.g. images/pg.toml; its image is built on first use) or "
               "a built image's name or id (`kestrel image ls`); empty: the host's own root, read-only",
       .path_like = true},
      {.name = "write_through",
       .type = Type::kTrees,
       .fallback = "auto",
       .env = "KESTREL_WRITE_THROUGH",
       .option = "--write-through",
       .help = "host directories the program's writes reach (everything else it writes vanishes with the VM): "
               "auto (its project, else its working directory, and the build tree it was built in: CMake, "
               "cargo, go), more paths, or none (strict isolation); `kestrel config` shows them",
       .path_like = true},
  };
  return table;
}

const std::vector<EnvOnly>& environment_only() {
  static const std::vector<EnvOnly> table = {
      {"KESTREL_RUNTIME_DIR", "deployments; default $XDG_RUNTIME_DIR/kestrel, else /tmp/kestrel-$UID"},
      {"KESTREL_CACHE_DIR",
       "kernels, images, initramfs images and warm-start templates; default $XDG_CACHE_HOME/kestrel, else "
       "~/.cache/kestrel"},
      {"KESTREL_TEMPLATE_DIR",
       "warm-start templates (an absolute path); default $KESTREL_CACHE_DIR/templates. Where the cache is shared "
       "by a cluster's nodes, a directory on each node's own disk (docs/scale-out.md)"},
      {kKeepTtlVariable,
       "how long kept VMs live before any kestrel command removes them: seconds, or a number with s, m, h or d "
       "(default 2h; at most 1000000000 s)"},
      {"KESTREL_QEMU", "the QEMU binary; default qemu-system-x86_64 from PATH"},
      {"KESTREL_AGENT", "the guest agent; default next to kestrel or in PREFIX/libexec/kestrel"},
      {"KESTREL_BUSYBOX", "a static busybox for the initramfs; default /bin/busybox"},
      {"KESTREL_TRACE", "1: print phase timings of `kestrel run` to stderr"},
      {"KESTREL_CONSOLE_LOG_MAX",
       "the most a VM's console.log holds: bytes, or a number with K, M or G (default 16M, at least 64K); past it "
       "the log keeps its start and the latest output and says how much it dropped between"},
      {"KESTREL_HOST_ROOT",
       "for tests: read the host's KVM facts (dev/kvm, sys/module, proc/cpuinfo) and time zone (etc/localtime, "
       "etc/timezone) under this directory instead of /"},
  };
  return table;
}

const Key* find_key(std::string_view name) {
  for (const Key& k : keys())
    if (name == k.name) return &k;
  return nullptr;
}

std::string suggest_key(std::string_view name) {
  const Key* best = nullptr;
  size_t best_distance = 3;  // further than 2 edits is not a typo
  for (const Key& k : keys()) {
    size_t d = edit_distance(name, k.name);
    if (d < best_distance) best = &k, best_distance = d;
  }
  return best ? best->name : "";
}

namespace {

std::vector<std::string> split_list(std::string_view text) {
  std::vector<std::string> out;
  for (const auto& item : split(text, ',')) {
    std::string_view t = trim(item);
    if (!t.empty()) out.emplace_back(t);
  }
  return out;
}

std::string absolute_from(std::string_view path, const std::string& base_dir) {
  std::filesystem::path p(path);
  if (p.is_relative()) p = std::filesystem::path(base_dir) / p;
  std::string s = p.lexically_normal().string();
  if (s.size() > 1 && s.back() == '/') s.pop_back();
  return s;
}

std::string normalize_share(std::string_view spec, const std::string& base_dir) {
  std::string_view path = spec;
  bool read_only = true;
  if (auto colon = spec.rfind(':'); colon != std::string_view::npos) {
    std::string_view mode = spec.substr(colon + 1);
    if (mode != "ro" && mode != "rw") fail("'{}': expected PATH, PATH:ro or PATH:rw", spec);
    read_only = mode == "ro";
    path = spec.substr(0, colon);
  }
  if (path.empty()) fail("'{}': the path is empty", spec);
  std::string abs = absolute_from(path, base_dir);
  if (abs == "/") fail("'{}': the root is shared already (read-only, with a throw-away layer)", spec);
  return abs + (read_only ? ":ro" : ":rw");
}

// digits [. digits] [e|E [+|-] digits], at least one digit before the exponent.
bool is_decimal_syntax(std::string_view t) {
  size_t i = 0, digits = 0;
  auto is_digit = [&](size_t k) { return k < t.size() && t[k] >= '0' && t[k] <= '9'; };
  while (is_digit(i)) ++i, ++digits;
  if (i < t.size() && t[i] == '.')
    for (++i; is_digit(i); ++i) ++digits;
  if (digits == 0) return false;
  if (i < t.size() && (t[i] == 'e' || t[i] == 'E')) {
    ++i;
    if (i < t.size() && (t[i] == '+' || t[i] == '-')) ++i;
    if (!is_digit(i)) return false;
    while (is_digit(i)) ++i;
  }
  return i == t.size();
}

bool valid_pattern(std::string_view p) {
  return !p.empty() && std::all_of(p.begin(), p.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '*' || c == '?';
  });
}

}  // namespace

Value parse_text(const Key& key, std::string_view text, const std::string& base_dir) {
  std::string t(trim(text));
  switch (key.type) {
    case Type::kCount: {
      // from_chars takes no sign '+', no hex and no spaces, and says when the
      // digits are too many for an int64_t instead of wrapping.
      int64_t v = 0;
      auto [end, ec] = std::from_chars(t.data(), t.data() + t.size(), v);
      if (ec == std::errc::result_out_of_range && end == t.data() + t.size())
        fail("'{}' is out of range: expected {}", t, describe_type(key));
      if (t.empty() || ec != std::errc() || end != t.data() + t.size()) fail("'{}' is not {}", t, describe_type(key));
      return check_value(key, v, base_dir);
    }
    case Type::kSeconds: {
      if (auto v = parse_decimal(t)) {
        if (*v > static_cast<double>(key.max)) fail("'{}' is out of range: expected {}", t, describe_type(key));
        return check_value(key, *v, base_dir);
      }
      if (is_decimal_syntax(t)) fail("'{}' is out of range: expected {}", t, describe_type(key));  // 1e400
      fail("'{}' is not {}", t, describe_type(key));
    }
    case Type::kSwitch:
      if (t == "true" || t == "1" || t == "yes" || t == "on") return true;
      if (t == "false" || t == "0" || t == "no" || t == "off") return false;
      fail("'{}' is not {}", t, describe_type(key));
    case Type::kText:
    case Type::kChoice:
      return check_value(key, t, base_dir);
    case Type::kPatterns:
    case Type::kShares:
    case Type::kTrees:
      return check_value(key, split_list(t), base_dir);
  }
  fail("unknown type of key {}", key.name);
}

Value check_value(const Key& key, Value value, const std::string& base_dir) {
  switch (key.type) {
    case Type::kCount: {
      int64_t v = std::get<int64_t>(value);
      if (v < key.min || v > key.max) fail("{} is out of range: expected {}", v, describe_type(key));
      break;
    }
    case Type::kSeconds: {
      // Files give NaN, inf and 1e300 as TOML floats: none is a duration.
      double v = std::get<double>(value);
      if (!(v >= static_cast<double>(key.min) && v <= static_cast<double>(key.max)))
        fail("{} is out of range: expected {}", v, describe_type(key));
      break;
    }
    case Type::kChoice: {
      const auto& v = std::get<std::string>(value);
      auto choices = split(key.choices, '|');
      if (std::find(choices.begin(), choices.end(), v) == choices.end()) fail("'{}' is not {}", v, describe_type(key));
      break;
    }
    case Type::kText: {
      auto& v = std::get<std::string>(value);
      // A bounded text (kernel_args) is one line: a NUL or a line break would
      // end or split what it goes into.
      if (key.max > 0) {
        if (v.find('\0') != std::string::npos) fail("the value has a NUL byte: expected {}", describe_type(key));
        if (v.find_first_of("\r\n") != std::string::npos)
          fail("the value has a line break: expected {}", describe_type(key));
        if (v.size() > static_cast<size_t>(key.max))
          fail("the value is {} bytes long: expected {}", v.size(), describe_type(key));
      }
      // A path is relative to the file that gives it; so is a recipe named
      // without a directory ("pg.toml").
      if (key.path_like && (v.find('/') != std::string::npos || v.ends_with(".toml"))) v = absolute_from(v, base_dir);
      break;
    }
    case Type::kPatterns:
      for (const auto& p : std::get<std::vector<std::string>>(value))
        if (!valid_pattern(p)) fail("'{}' is not a variable name pattern (letters, digits, _, * and ?)", p);
      break;
    case Type::kShares:
      for (auto& s : std::get<std::vector<std::string>>(value)) s = normalize_share(s, base_dir);
      break;
    case Type::kTrees: {
      auto& items = std::get<std::vector<std::string>>(value);
      for (auto& item : items) {
        if (item == "none") {
          if (items.size() > 1) fail("'none' (no write-through trees) cannot be combined with other entries");
          continue;
        }
        if (item == "auto") continue;
        if (item.empty()) fail("'': the path is empty");
        item = absolute_from(item, base_dir);
        if (item == "/") fail("'/': the host's root is never written through (it is read-only in the VM)");
      }
      break;
    }
    case Type::kSwitch:
      break;
  }
  return value;
}

std::optional<double> parse_decimal(std::string_view text) {
  if (!is_decimal_syntax(text)) return std::nullopt;
  double v = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc() || end != text.data() + text.size() || !std::isfinite(v)) return std::nullopt;
  return v;
}

int64_t parse_duration(std::string_view text) {
  static constexpr std::pair<char, int64_t> kUnits[] = {{'s', 1}, {'m', 60}, {'h', 3600}, {'d', 86400}};
  std::string_view t = trim(text);
  std::string_view number = t;
  int64_t unit = 1;
  for (auto [suffix, seconds] : kUnits) {
    if (!t.empty() && t.back() == suffix) {
      unit = seconds;
      number.remove_suffix(1);
      break;
    }
  }
  std::string expected =
      fmt::format("expected seconds, or a number with s, m, h or d (e.g. 90m, 2h), from 0 to {} s", kMaxSeconds);
  auto v = parse_decimal(number);
  if (!v && !is_decimal_syntax(number)) fail("'{}' is not a time span: {}", t, expected);
  if (!v || *v * static_cast<double>(unit) > static_cast<double>(kMaxSeconds))
    fail("'{}' is out of range: {}", t, expected);
  return static_cast<int64_t>(*v * static_cast<double>(unit));
}

std::string format_value(const Value& value) {
  struct {
    std::string operator()(int64_t v) const { return std::to_string(v); }
    std::string operator()(double v) const { return fmt::format("{}", v); }
    std::string operator()(bool v) const { return v ? "true" : "false"; }
    std::string operator()(const std::string& v) const { return quote(v); }
    std::string operator()(const std::vector<std::string>& v) const {
      std::string out = "[";
      for (size_t i = 0; i < v.size(); ++i) out += (i ? ", " : "") + quote(v[i]);
      return out + "]";
    }
    static std::string quote(const std::string& s) {
      std::string out = "\"";
      for (char c : s) {
        if (c == '"' || c == '\\') out += '\\';
        out += c;
      }
      return out + "\"";
    }
  } visitor;
  return std::visit(visitor, value);
}

std::string describe_type(const Key& key) {
  switch (key.type) {
    case Type::kCount:
      return fmt::format("an integer from {} to {}", key.min, key.max);
    case Type::kSeconds:
      return fmt::format("a number of seconds from {} to {}", key.min, key.max);
    case Type::kText:
      if (key.max > 0) return fmt::format("a string of one line, at most {} bytes", key.max);
      return key.path_like ? "a string (a name or a path)" : "a string";
    case Type::kChoice: {
      auto choices = split(key.choices, '|');
      std::string out = "one of ";
      for (size_t i = 0; i < choices.size(); ++i) out += (i ? ", " : "") + choices[i];
      return out;
    }
    case Type::kSwitch:
      return "a boolean (true or false)";
    case Type::kPatterns:
      return "a list of variable name patterns";
    case Type::kShares:
      return "a list of PATH:ro or PATH:rw";
    case Type::kTrees:
      return "a list of auto and PATHs, or none";
  }
  return "value";
}

std::string value_placeholder(const Key& key) {
  switch (key.type) {
    case Type::kCount:
      return "N";
    case Type::kSeconds:
      return "SECONDS";
    case Type::kText:
      return key.path_like ? "NAME|PATH" : key.max > 0 ? "ARGS" : "TEXT";  // kernel_args: --append ARGS
    case Type::kChoice:
      return key.choices;
    case Type::kSwitch:
      return "true|false";
    case Type::kPatterns:
      return "PATTERN,...";
    case Type::kShares:
      return "PATH[:ro|:rw]";
    case Type::kTrees:
      return "auto|none|PATH";
  }
  return "VALUE";
}

Share parse_share(std::string_view normalized) {
  auto colon = normalized.rfind(':');
  if (colon == std::string_view::npos) return {std::string(normalized), true};
  return {std::string(normalized.substr(0, colon)), normalized.substr(colon + 1) != "rw"};
}

}  // namespace kestrel::config
