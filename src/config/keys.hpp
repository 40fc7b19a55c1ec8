// The configuration keys: ONE table (keys.cpp) with each key's name, type,
// built-in default, environment variable, `kestrel run` option and help.
// `kestrel config`, validation, `kestrel run --help` and docs/config.md all
// derive from it. Values are parsed and checked here, whatever their source.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace kestrel::config {

// The longest span any duration setting accepts, in seconds (about 31 years):
// longer is no deadline anyone means, and every clock and integer that
// carries a duration holds it without overflow.
inline constexpr int64_t kMaxSeconds = 1'000'000'000;

enum class Type {
  kCount,     // integer within [min, max]
  kSeconds,   // decimal number of seconds within [min, max], fractions allowed
  kText,      // string
  kChoice,    // one of `choices`
  kSwitch,    // true / false
  kPatterns,  // list of variable names, `*` and `?` as wildcards
  kShares,    // list of "PATH[:ro|:rw]"
  kTrees,     // list of "auto" and paths, or "none" alone
};

struct Key {
  const char* name;  // as written in kestrel.toml; "env.pass" is `pass` in table [env]
  Type type;
  const char* fallback;  // built-in default, written as in the environment variable
  const char* env;       // KESTREL_... variable
  const char* option;    // `kestrel run` option ("" if none)
  const char* help;      // one line
  int64_t min = 0;       // kCount and kSeconds bounds; a kText with a max is one line of at most max bytes
  int64_t max = 0;
  const char* choices = "";  // kChoice: "a|b|c"
  // The run option is a flag that sets this value (e.g. --list-in-vm sets
  // "false"), described by flag_help.
  const char* flag_sets = "";
  const char* flag_help = "";
  // Values containing '/' are paths; a relative one is resolved against the
  // directory of the file that sets it (the current directory for the
  // environment and the command line).
  bool path_like = false;
};

const std::vector<Key>& keys();
// nullptr if there is no such key.
const Key* find_key(std::string_view name);
// The known key closest to `name`, if it is close enough to be a likely typo.
std::string suggest_key(std::string_view name);

// kCount: int64_t, kSeconds: double, kSwitch: bool, kText/kChoice: string,
// kPatterns/kShares/kTrees: list of strings (shares normalized to "ABS_PATH:ro|rw", trees to
// "auto" or an absolute path; "none" stays alone).
using Value = std::variant<int64_t, double, bool, std::string, std::vector<std::string>>;

// Parses a value written as text (environment, command line, default).
// Lists are comma-separated. Throws Error("expected ...") without location;
// callers add where the text came from.
Value parse_text(const Key& key, std::string_view text, const std::string& base_dir);

// Checks bounds and choices, normalizes paths. Throws Error without location.
Value check_value(const Key& key, Value value, const std::string& base_dir);

// The value as TOML would write it: 512, 1.5, true, "x", ["a", "b"].
std::string format_value(const Value& value);

// A plain decimal number ("90", "1.5", "2e3"): digits with an optional
// fraction and exponent. No sign, hex, inf, nan, spaces or trailing text;
// nullopt for those and for what a double cannot hold.
std::optional<double> parse_decimal(std::string_view text);

// A time span as KESTREL_KEEP_TTL writes it: a decimal number of seconds, or
// one with the unit s, m, h or d ("90m", "1.5h"), from 0 to kMaxSeconds.
// Returns whole seconds. Throws Error without location.
int64_t parse_duration(std::string_view text);

// Where the time to live of kept VMs comes from: the environment only.
inline constexpr const char* kKeepTtlVariable = "KESTREL_KEEP_TTL";
inline constexpr int64_t kDefaultKeepTtl = 2 * 3600;

// What the type accepts, for messages and docs ("an integer from 128 to 1048576").
std::string describe_type(const Key& key);
// The placeholder of a command-line value: N, SECONDS, A|B|C, PATH[:ro|:rw].
std::string value_placeholder(const Key& key);

// Variables kestrel reads that are not configuration keys (no file
// equivalent): where things live, debugging aids. Documented with the keys.
struct EnvOnly {
  const char* name;
  const char* help;
};
const std::vector<EnvOnly>& environment_only();

// A share as used by `kestrel run`.
struct Share {
  std::string path;  // absolute
  bool read_only = true;
};
Share parse_share(std::string_view normalized);

}  // namespace kestrel::config
