// The configuration layer: precedence and origins, file discovery, error
// positions, value checks, and docs/config.md derived from the key table.
#include "config/config.hpp"

#include <gtest/gtest.h>

#include <map>
#include <utility>

#include "config/reference.hpp"
#include "test_support.hpp"
#include "util/error.hpp"
#include "util/fs.hpp"

namespace kestrel::config {
namespace {

struct FakeEnv {
  std::map<std::string, std::string> vars;
  GetEnv getter() const {
    return [this](const char* name) -> const char* {
      auto it = vars.find(name);
      return it == vars.end() ? nullptr : it->second.c_str();
    };
  }
};

class ConfigTest : public ::testing::Test {
 protected:
  TempDir tmp{"/tmp", "kestrel-config-test-"};
  fs::path project = tmp.path() / "project";
  fs::path nested = project / "a" / "b";
  fs::path xdg = tmp.path() / "xdg";
  FakeEnv env;

  void SetUp() override {
    make_dirs(nested);
    make_dirs(xdg / "kestrel");
    env.vars["XDG_CONFIG_HOME"] = xdg.string();
  }
  void write(const fs::path& path, const std::string& text) { write_file_atomic(path, text); }
  Config load(const fs::path& cwd) { return Config::load({cwd, env.getter()}); }
  // The error message load() throws, or "" if it does not.
  std::string load_error(const fs::path& cwd) {
    return test::error_message([&] { load(cwd); });
  }
};

TEST_F(ConfigTest, DefaultsWithoutFilesOrEnvironment) {
  Config c = load(nested);
  EXPECT_EQ(c.count("memory"), 1024);
  EXPECT_EQ(c.count("cpus"), 1);
  EXPECT_EQ(c.text("keep"), "on-failure");
  EXPECT_TRUE(c.flag("list_on_host"));
  EXPECT_EQ(c.list("env.pass"), std::vector<std::string>{"*"});
  EXPECT_EQ(c.entry("memory").origin.source, Source::kDefault);
  EXPECT_FALSE(c.project_file());
  EXPECT_EQ(c.user_file(), xdg / "kestrel" / "config.toml");
  EXPECT_FALSE(c.user_file_exists());
}

TEST_F(ConfigTest, PrecedenceCommandLineEnvironmentProjectUserDefault) {
  write(xdg / "kestrel" / "config.toml", "memory = 600\ncpus = 2\ntimeout = 5\nkeep = \"never\"\n");
  write(project / "kestrel.toml", "# project\nmemory = 700\ncpus = 3\ntimeout = 6\n");
  env.vars["KESTREL_CPUS"] = "4";
  env.vars["KESTREL_TIMEOUT"] = "7.5";
  Config c = load(nested);
  c.set_from_command_line("timeout", "8", "--timeout");

  EXPECT_EQ(c.text("keep"), "never");
  EXPECT_EQ(c.entry("keep").origin.source, Source::kUserFile);
  EXPECT_EQ(c.entry("keep").origin.where, (xdg / "kestrel" / "config.toml").string() + ":4");
  EXPECT_EQ(c.count("memory"), 700);
  EXPECT_EQ(c.entry("memory").origin.source, Source::kProjectFile);
  EXPECT_EQ(describe_origin(c.entry("memory").origin), "project file " + (project / "kestrel.toml").string() + ":2");
  EXPECT_EQ(c.count("cpus"), 4);
  EXPECT_EQ(describe_origin(c.entry("cpus").origin), "environment KESTREL_CPUS");
  EXPECT_DOUBLE_EQ(c.seconds("timeout"), 8);
  EXPECT_EQ(describe_origin(c.entry("timeout").origin), "command line --timeout");
  EXPECT_EQ(c.entry("slots").origin.source, Source::kDefault);
}

TEST_F(ConfigTest, ProjectFileIsTheNearestOneWalkingUp) {
  write(project / "kestrel.toml", "cpus = 2\n");
  EXPECT_EQ(load(nested).project_file(), project / "kestrel.toml");
  write(project / "a" / "kestrel.toml", "cpus = 3\n");
  Config c = load(nested);
  EXPECT_EQ(c.project_file(), project / "a" / "kestrel.toml");
  EXPECT_EQ(c.count("cpus"), 3);
  // A directory named kestrel.toml is not a file.
  make_dirs(nested / "kestrel.toml");
  EXPECT_EQ(load(nested).project_file(), project / "a" / "kestrel.toml");
}

TEST_F(ConfigTest, FileInTheCurrentDirectoryIsNamedRelatively) {
  write(project / "kestrel.toml", "cpus = 2\n");
  EXPECT_EQ(load(project).entry("cpus").origin.where, "kestrel.toml:1");
}

TEST_F(ConfigTest, UserFileLocation) {
  FakeEnv e;
  e.vars["HOME"] = "/home/u";
  EXPECT_EQ(user_file_path(e.getter()), fs::path("/home/u/.config/kestrel/config.toml"));
  e.vars["XDG_CONFIG_HOME"] = "relative/ignored";
  EXPECT_EQ(user_file_path(e.getter()), fs::path("/home/u/.config/kestrel/config.toml"));
  e.vars["XDG_CONFIG_HOME"] = "/x";
  EXPECT_EQ(user_file_path(e.getter()), fs::path("/x/kestrel/config.toml"));
  EXPECT_FALSE(user_file_path(FakeEnv{}.getter()));
}

TEST_F(ConfigTest, BadFilesNameTheFileAndLine) {
  auto file = project / "kestrel.toml";
  write(file, "memory = 1024\n\n[env\n");
  EXPECT_EQ(load_error(project).rfind("kestrel.toml:3: ", 0), 0u) << load_error(project);

  write(file, "memory = 1024\nmemroy = 5\n");
  EXPECT_EQ(load_error(project),
            "kestrel.toml:2: unknown key 'memroy' (did you mean 'memory'?); `kestrel config --keys` lists the keys");

  write(file, "cpus = 2\nmemory = \"big\"\n");
  EXPECT_EQ(load_error(project), "kestrel.toml:2: memory: expected an integer from 128 to 1048576, got a string");

  write(file, "\n\nmemory = 10\n");
  EXPECT_EQ(load_error(project), "kestrel.toml:3: memory: 10 is out of range: expected an integer from 128 to 1048576");

  write(file, "keep = \"sometimes\"\n");
  EXPECT_EQ(load_error(project), "kestrel.toml:1: keep: 'sometimes' is not one of on-failure, always, never");

  write(file, "[env]\npass = [\"PATH\"]\nshare = [\"/srv\"]\n");
  EXPECT_EQ(load_error(project).rfind("kestrel.toml:3: unknown key 'env.share' ('share' is a top-level key", 0), 0u)
      << load_error(project);

  write(file, "share = [\"/srv:rx\"]\n");
  EXPECT_EQ(load_error(project), "kestrel.toml:1: share: '/srv:rx': expected PATH, PATH:ro or PATH:rw");

  // The user file is checked just as strictly, and named absolutely.
  write(file, "");
  write(xdg / "kestrel" / "config.toml", "cpus = true\n");
  EXPECT_EQ(load_error(project),
            (xdg / "kestrel" / "config.toml").string() + ":1: cpus: expected an integer from 1 to 64, got a boolean");
}

TEST_F(ConfigTest, BadEnvironmentValuesNameTheVariable) {
  env.vars["KESTREL_MEMORY"] = "lots";
  EXPECT_EQ(load_error(project), "KESTREL_MEMORY=lots: 'lots' is not an integer from 128 to 1048576");
  env.vars["KESTREL_MEMORY"] = "";  // empty counts as unset
  EXPECT_EQ(load(project).count("memory"), 1024);
  env.vars["KESTREL_LIST_ON_HOST"] = "maybe";
  EXPECT_EQ(load_error(project), "KESTREL_LIST_ON_HOST=maybe: 'maybe' is not a boolean (true or false)");
}

TEST_F(ConfigTest, TimeoutsOutOfRangeAreRejectedFromEverySource) {
  // 1e16 s once overflowed the deadline and killed the program at once (124).
  const std::string range = "expected a number of seconds from 0 to 1000000000";
  for (const char* bad : {"1e16", "9e12", "1e300", "1000000001"}) {
    env.vars["KESTREL_TIMEOUT"] = bad;
    EXPECT_EQ(load_error(project), fmt::format("KESTREL_TIMEOUT={}: '{}' is out of range: {}", bad, bad, range));
  }
  env.vars["KESTREL_TIMEOUT"] = "1e400";  // too big for a double: out of range, not "not a number"
  EXPECT_EQ(load_error(project), "KESTREL_TIMEOUT=1e400: '1e400' is out of range: " + range);
  for (const char* bad : {"inf", "nan", "-1", "0x10", "10s", "1,5", "+3", "1e", ".", "--1", "infinity"}) {
    env.vars["KESTREL_TIMEOUT"] = bad;
    EXPECT_EQ(load_error(project), fmt::format("KESTREL_TIMEOUT={}: '{}' is not a number of seconds from 0 to "
                                               "1000000000",
                                               bad, bad));
  }
  for (auto [text, seconds] :
       {std::pair{"0", 0.0}, {"1.5", 1.5}, {"300", 300.0}, {"2e3", 2000.0}, {".5", 0.5}, {"1000000000", 1e9}}) {
    env.vars["KESTREL_TIMEOUT"] = text;
    EXPECT_EQ(load(project).seconds("timeout"), seconds) << text;
  }
  env.vars.erase("KESTREL_TIMEOUT");

  // TOML has inf and nan literals, and floats of any size.
  auto file = project / "kestrel.toml";
  write(file, "timeout = 1e300\n");
  EXPECT_EQ(load_error(project), "kestrel.toml:1: timeout: 1e+300 is out of range: " + range);
  write(file, "\ntimeout = inf\n");
  EXPECT_EQ(load_error(project), "kestrel.toml:2: timeout: inf is out of range: " + range);
  write(file, "timeout = nan\n");
  EXPECT_EQ(load_error(project), "kestrel.toml:1: timeout: nan is out of range: " + range);
  write(file, "timeout = -5\n");
  EXPECT_EQ(load_error(project), "kestrel.toml:1: timeout: -5 is out of range: " + range);
  write(file, "timeout = 9_000_000_000_000\n");
  EXPECT_EQ(load_error(project), "kestrel.toml:1: timeout: 9000000000000 is out of range: " + range);
  write(file, "timeout = 600\n");
  EXPECT_EQ(load(project).seconds("timeout"), 600);

  Config c = load(project);
  for (const char* bad : {"1e16", "inf", "nan", "-1"})
    EXPECT_THROW(c.set_from_command_line("timeout", bad, "--timeout"), Error) << bad;
  EXPECT_EQ(c.seconds("timeout"), 600);
}

TEST_F(ConfigTest, CountsRejectHexSignsHugeAndTrailingText) {
  for (const char* bad : {"0x100", "128MiB", "1e3", "12.0", "+128", "nan", "inf", " ", "1 2"}) {
    env.vars["KESTREL_MEMORY"] = bad;
    EXPECT_NE(load_error(project).find("is not an integer from"), std::string::npos) << bad << load_error(project);
  }
  for (const char* bad : {"99999999999999999999", "-99999999999999999999"}) {
    env.vars["KESTREL_SLOTS"] = bad;
    env.vars.erase("KESTREL_MEMORY");
    EXPECT_EQ(load_error(project),
              fmt::format("KESTREL_SLOTS={}: '{}' is out of range: expected an integer from 0 to 4096", bad, bad));
  }
  env.vars["KESTREL_SLOTS"] = "-1";
  EXPECT_EQ(load_error(project), "KESTREL_SLOTS=-1: -1 is out of range: expected an integer from 0 to 4096");
}

TEST(KeepTtl, UnitsAndLimits) {
  EXPECT_EQ(parse_duration("7200"), 7200);
  EXPECT_EQ(parse_duration("2h"), 7200);
  EXPECT_EQ(parse_duration("90m"), 5400);
  EXPECT_EQ(parse_duration("1.5h"), 5400);
  EXPECT_EQ(parse_duration("30s"), 30);
  EXPECT_EQ(parse_duration("1d"), 86400);
  EXPECT_EQ(parse_duration("0"), 0);
  EXPECT_EQ(parse_duration("1000000000s"), 1'000'000'000);
  auto error_of = [](const char* text) {
    try {
      parse_duration(text);
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("accepted");
  };
  // inf, nan and 1e30s once overflowed into a negative TTL: every kept VM
  // was "expired" and destroyed by the next kestrel command.
  const std::string expected = "expected seconds, or a number with s, m, h or d (e.g. 90m, 2h), from 0 to 1000000000 s";
  for (const char* bad : {"1e30s", "1e30", "11575d", "1e400", "1000000001"})
    EXPECT_EQ(error_of(bad), fmt::format("'{}' is out of range: {}", bad, expected));
  for (const char* bad : {"inf", "nan", "zzz", "-1", "-1h", "2hx", "h", "", "0x10", "2 h", "2H", "infd", "nand"})
    EXPECT_EQ(error_of(bad), fmt::format("'{}' is not a time span: {}", bad, expected));
}

TEST_F(ConfigTest, LenientLoadingReportsEveryBadSettingAndKeepsTheRest) {
  write(project / "kestrel.toml", "memory = 1024\ncpus = 0\n");  // a bad file is skipped whole
  env.vars["KESTREL_TIMEOUT"] = "1e16";
  env.vars["KESTREL_KEEP"] = "forever";
  env.vars["KESTREL_MEMORY"] = "256";
  std::vector<std::string> problems;
  Config c = Config::load_lenient({project, env.getter()}, problems);
  ASSERT_EQ(problems.size(), 3u);
  EXPECT_EQ(problems[0], "kestrel.toml:2: cpus: 0 is out of range: expected an integer from 1 to 64");
  EXPECT_EQ(problems[1].rfind("KESTREL_TIMEOUT=1e16: ", 0), 0u) << problems[1];
  EXPECT_EQ(problems[2].rfind("KESTREL_KEEP=forever: ", 0), 0u) << problems[2];
  EXPECT_EQ(c.seconds("timeout"), 0);
  EXPECT_EQ(c.entry("timeout").origin.source, Source::kDefault);
  EXPECT_EQ(c.text("keep"), "on-failure");
  EXPECT_EQ(c.count("memory"), 256);
  // load() stops at the first.
  EXPECT_EQ(load_error(project), problems[0]);
}

TEST_F(ConfigTest, CommandLineValuesAreChecked) {
  Config c = load(project);
  EXPECT_THROW(c.set_from_command_line("cpus", "0", "--cpus"), Error);
  EXPECT_THROW(c.set_from_command_line("keep", "forever", "--keep"), Error);
  EXPECT_EQ(c.count("cpus"), 1);
}

TEST_F(ConfigTest, RelativePathsResolveAgainstTheirFile) {
  write(project / "kestrel.toml", "share = [\"data\", \"/srv/out:rw\", \"../up/\"]\nkernel = \"k/vmlinux\"\n");
  env.vars["KESTREL_KERNEL_MODULES"] = "mods";
  Config c = load(nested);
  EXPECT_EQ(c.list("share"), (std::vector<std::string>{(project / "data").string() + ":ro", "/srv/out:rw",
                                                       (tmp.path() / "up").string() + ":ro"}));
  EXPECT_EQ(c.text("kernel"), (project / "k" / "vmlinux").string());
  EXPECT_EQ(c.text("kernel_modules"), "mods");  // no '/': a name, left alone
  Share s = parse_share(c.list("share")[1]);
  EXPECT_EQ(s.path, "/srv/out");
  EXPECT_FALSE(s.read_only);
}

TEST_F(ConfigTest, KernelArgsAreOneLineOfAtMost2048Bytes) {
  EXPECT_EQ(load(project).text("kernel_args"), "");
  // Not a path, whatever it holds.
  write(project / "kestrel.toml", "kernel_args = \"foo=bar init=/bin/sh\"\n");
  EXPECT_EQ(load(nested).text("kernel_args"), "foo=bar init=/bin/sh");
  env.vars["KESTREL_KERNEL_ARGS"] = "loglevel=7";
  EXPECT_EQ(load(nested).text("kernel_args"), "loglevel=7");
  Config c = load(nested);
  c.set_from_command_line("kernel_args", "quiet=0 a.b=c", "--append");
  EXPECT_EQ(c.text("kernel_args"), "quiet=0 a.b=c");

  const std::string type = "expected a string of one line, at most 2048 bytes";
  env.vars.erase("KESTREL_KERNEL_ARGS");
  write(project / "kestrel.toml", "kernel_args = \"a\\nb\"\n");
  EXPECT_EQ(load_error(project), "kestrel.toml:1: kernel_args: the value has a line break: " + type);
  write(project / "kestrel.toml", "kernel_args = \"a\\u0000b\"\n");
  EXPECT_EQ(load_error(project), "kestrel.toml:1: kernel_args: the value has a NUL byte: " + type);
  env.vars["KESTREL_KERNEL_ARGS"] = std::string(2049, 'x');
  write(project / "kestrel.toml", "");
  EXPECT_EQ(load_error(project),
            "KESTREL_KERNEL_ARGS=" + std::string(2049, 'x') + ": the value is 2049 bytes long: " + type);
  env.vars["KESTREL_KERNEL_ARGS"] = std::string(2048, 'x');
  EXPECT_EQ(load(project).text("kernel_args").size(), 2048u);
  EXPECT_THROW(c.set_from_command_line("kernel_args", "a\rb", "--append"), Error);
}

TEST_F(ConfigTest, ListsFromTheEnvironmentAreCommaSeparated) {
  env.vars["KESTREL_ENV_DENY"] = "AWS_*, GITHUB_TOKEN";
  EXPECT_EQ(load(project).list("env.deny"), (std::vector<std::string>{"AWS_*", "GITHUB_TOKEN"}));
  env.vars["KESTREL_ENV_DENY"] = "NOT-A-NAME";
  EXPECT_NE(load_error(project).find("not a variable name pattern"), std::string::npos);
}

TEST_F(ConfigTest, DottedKeysAndTablesAreTheSame) {
  write(project / "kestrel.toml", "env.deny = [\"A\"]\n");
  EXPECT_EQ(load(project).list("env.deny"), std::vector<std::string>{"A"});
  write(project / "kestrel.toml", "[env]\ndeny = [\"B\"]\n");
  EXPECT_EQ(load(project).list("env.deny"), std::vector<std::string>{"B"});
}

TEST(ConfigKeys, EveryKeyHasAValidDefaultAndAKestrelVariable) {
  for (const Key& k : keys()) {
    EXPECT_NO_THROW(parse_text(k, k.fallback, "/")) << k.name;
    EXPECT_EQ(std::string(k.env).rfind("KESTREL_", 0), 0u) << k.name;
    EXPECT_TRUE(*k.help) << k.name;
  }
  EXPECT_EQ(format_value(std::vector<std::string>{"a", "b\"c"}), "[\"a\", \"b\\\"c\"]");
}

TEST(ConfigKeys, DocsConfigMdHasTheKeyTable) {
  std::string doc = read_file(fs::path(KESTREL_SOURCE_DIR) / "docs" / "config.md");
  const std::string begin = "<!-- keys: begin (generated by `kestrel config --markdown`) -->\n";
  const std::string end = "<!-- keys: end -->";
  auto b = doc.find(begin), e = doc.find(end);
  ASSERT_NE(b, std::string::npos) << "docs/config.md lacks the begin marker";
  ASSERT_NE(e, std::string::npos) << "docs/config.md lacks the end marker";
  EXPECT_EQ(doc.substr(b + begin.size(), e - b - begin.size()), key_reference_markdown())
      << "docs/config.md is out of date: regenerate its table with `kestrel config --markdown`";
}

}  // namespace
}  // namespace kestrel::config
