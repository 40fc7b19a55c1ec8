// Image recipes: a full recipe, the defaults, every error with its
// "PATH:LINE:" prefix, readiness checks, and the digest that keys images.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <string>

#include "image/recipe.hpp"
#include "test_support.hpp"
#include "util/error.hpp"
#include "util/fs.hpp"

namespace kestrel::image {
namespace {

using namespace std::chrono_literals;

class RecipeTest : public ::testing::Test {
 protected:
  TempDir tmp{"/tmp", "kestrel-recipe-test-"};
  fs::path images = tmp.path() / "images";
  fs::path file = images / "pg.toml";
  fs::path os_release = tmp.path() / "os-release";

  void SetUp() override {
    make_dirs(images / "conf" / "sub");
    write_file_atomic(images / "conf" / "app.conf", "port = 1\n");
    write_file_atomic(images / "conf" / "sub" / "x", "x\n", 0600);
    write_file_atomic(os_release,
                      "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nID=debian\nVERSION_CODENAME=bookworm\n");
  }
  Recipe parse(const std::string& text) { return parse_recipe(text, file, os_release); }
  // The message parse() throws, or "" if it does not.
  std::string error(const std::string& text) {
    return test::error_message([&] { parse(text); });
  }
  // `message` at `line` of the recipe.
  std::string at(int line, const std::string& message) {
    return file.string() + ":" + std::to_string(line) + ": " + message;
  }
};

constexpr const char* kFullRecipe = R"(# PostgreSQL for the integration tests
name = "pg-15"
suite = "trixie"
mirror = "https://deb.debian.org/debian"
packages = ["postgresql", "libpq5=15.6-0+deb12u1"]
size = "3G"
run = ["sed -i 's/peer/trust/' /etc/postgresql/*/main/pg_hba.conf", "true"]

[files]
"conf/app.conf" = "/etc/app.conf"
"conf" = "/etc/app/"

[[service]]
name = "postgresql"
command = "pg_ctlcluster 15 main start"
ready = "tcp:5432"
ready_timeout = 90

[[service]]
name = "sock"
command = "socat ..."
ready = "/run/x.sock"
ready_timeout = 0.5

[[service]]
name = "plain"
command = "sleep infinity"
)";

TEST_F(RecipeTest, FullRecipe) {
  Recipe r = parse(kFullRecipe);
  EXPECT_EQ(r.path, file);
  EXPECT_EQ(r.name, "pg-15");
  EXPECT_EQ(r.suite, "trixie");
  EXPECT_EQ(r.mirror, "https://deb.debian.org/debian");
  EXPECT_EQ(r.packages, (std::vector<std::string>{"postgresql", "libpq5=15.6-0+deb12u1"}));
  EXPECT_EQ(r.size_bytes, 3ull << 30);
  ASSERT_EQ(r.run.size(), 2u);
  EXPECT_EQ(r.run[1], "true");
  // Sorted by image path: the directory before the file placed inside it.
  ASSERT_EQ(r.files.size(), 2u);
  EXPECT_EQ(r.files[0].from, images / "conf");
  EXPECT_EQ(r.files[0].to, "/etc/app");
  EXPECT_EQ(r.files[1].from, images / "conf" / "app.conf");
  EXPECT_EQ(r.files[1].to, "/etc/app.conf");
  ASSERT_EQ(r.services.size(), 3u);
  EXPECT_EQ(r.services[0].name, "postgresql");
  EXPECT_EQ(r.services[0].command, "pg_ctlcluster 15 main start");
  EXPECT_EQ(r.services[0].ready.kind, ReadyCheck::Kind::kTcp);
  EXPECT_EQ(r.services[0].ready.port, 5432);
  EXPECT_EQ(r.services[0].ready_timeout, 90s);
  EXPECT_EQ(r.services[1].ready.kind, ReadyCheck::Kind::kUnix);
  EXPECT_EQ(r.services[1].ready.path, "/run/x.sock");
  EXPECT_EQ(r.services[1].ready_timeout, 500ms);
  EXPECT_EQ(r.services[2].ready.kind, ReadyCheck::Kind::kNone);
  EXPECT_EQ(r.services[2].ready_timeout, 60s);
}

TEST_F(RecipeTest, Defaults) {
  Recipe r = parse("packages = [\"curl\"]\n");
  EXPECT_EQ(r.name, "pg");
  EXPECT_EQ(r.suite, "bookworm");
  EXPECT_EQ(r.mirror, "");  // mmdebstrap chooses
  EXPECT_EQ(r.size_bytes, 2ull << 30);
  EXPECT_TRUE(r.files.empty());
  EXPECT_TRUE(r.run.empty());
  EXPECT_TRUE(r.services.empty());
  EXPECT_EQ(parse("size = 67108864\n").size_bytes, 64ull << 20);
  EXPECT_EQ(parse("size = \"1024G\"\n").size_bytes, 1ull << 40);
  EXPECT_EQ(parse("size = \"65536k\"\n").size_bytes, 64ull << 20);
}

TEST_F(RecipeTest, LoadReadsTheFileAndNamesAMissingOne) {
  write_file_atomic(file, kFullRecipe);
  EXPECT_EQ(load_recipe(file, os_release).name, "pg-15");
  try {
    load_recipe(images / "none.toml", os_release);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()),
              "cannot read recipe " + (images / "none.toml").string() + ": No such file or directory");
  }
}

TEST_F(RecipeTest, HostSuite) {
  EXPECT_EQ(host_suite(os_release), "bookworm");
  write_file_atomic(os_release, "ID='debian'\nVERSION_CODENAME=\"trixie\"\n");
  EXPECT_EQ(host_suite(os_release), "trixie");
  // Without a codename, or on another distribution, the recipe must say.
  write_file_atomic(os_release, "ID=debian\n");
  EXPECT_NE(error("").find(file.string() + ": cannot tell the host's Debian suite"), std::string::npos);
  EXPECT_NE(error("").find("set `suite`"), std::string::npos);
  write_file_atomic(os_release, "ID=ubuntu\nVERSION_CODENAME=noble\n");
  EXPECT_NE(error("").find("set `suite`"), std::string::npos);
  EXPECT_EQ(error("suite = \"bookworm\"\n"), "");
  ::unlink(os_release.c_str());
  EXPECT_THROW(host_suite(os_release), Error);
}

TEST_F(RecipeTest, NameFromAnUnfitFileStemIsAnError) {
  file = images / "My Image.toml";
  EXPECT_EQ(
      error(""),
      file.string() + ": the file's name 'My Image' is not a valid image name ([a-z0-9][a-z0-9._-]{0,62}): set `name`");
  EXPECT_EQ(parse("name = \"mine\"\n").name, "mine");
}

TEST_F(RecipeTest, ErrorsNameTheFileAndLine) {
  EXPECT_EQ(error("name = \"pg\"\npacakges = [\"x\"]\n"),
            at(2,
               "unknown key 'pacakges' (did you mean 'packages'?); the keys are: name, suite, mirror, packages, "
               "size, run, files, service"));
  EXPECT_EQ(error("\npackages = \"postgresql\"\n"), at(2, "`packages` must be a list of strings, not a string"));
  EXPECT_EQ(error("packages = [\n  \"a1\",\n  3,\n]\n"),
            at(3, "`packages` must be a list of strings, not hold an integer"));
  EXPECT_EQ(error("packages = [\"postgresql,libpq5\"]\n"),
            at(1,
               "packages: 'postgresql,libpq5' is not a Debian package name (optionally =VERSION); write one package "
               "per string"));
  EXPECT_NE(error("packages = [\"Curl\"]\n"), "");
  EXPECT_NE(error("packages = [\"curl=\"]\n"), "");
  EXPECT_NE(error("packages = [\"curl 7\"]\n"), "");
  EXPECT_EQ(error("name = 5\n"), at(1, "`name` must be a string, not an integer"));
  EXPECT_EQ(error("name = \"Pg\"\n"), at(1, "name 'Pg' must match [a-z0-9][a-z0-9._-]{0,62}"));
  EXPECT_EQ(error("mirror = \"ftp://x\"\n"),
            at(1, "mirror 'ftp://x' must be an http:// or https:// URL without spaces or commas"));
  EXPECT_NE(error("mirror = \"http://a,b\"\n"), "");
  EXPECT_EQ(error("run = [\"true\", false]\n"), at(1, "`run` must be a list of strings, not hold a boolean"));
  EXPECT_EQ(error("\n\nsize = \"32M\"\n"), at(3, "`size` 32M is out of range: at least 64M, at most 1024G"));
  EXPECT_EQ(error("size = \"2T\"\n"), at(1, "`size`: '2T' is not a size: write bytes, or a number and K, M or G"));
  EXPECT_EQ(error("size = \"1025G\"\n"), at(1, "`size` 1025G is out of range: at least 64M, at most 1024G"));
  EXPECT_EQ(error("size = \"99999999999999999999G\"\n"),
            at(1, "`size`: '99999999999999999999G' is not a size: write bytes, or a number and K, M or G"));
  EXPECT_EQ(error("size = 2.5\n"),
            at(1, "`size` must be a string like \"2G\" or an integer number of bytes, not a number"));
}

TEST_F(RecipeTest, SyntaxErrorsTakeTomlsLine) {
  std::string message = error("name = \"pg\"\n\n[files\n");
  EXPECT_EQ(message.rfind(at(3, ""), 0), 0u) << message;
  message = error("name = \"pg\"\nname = \"again\"\n");
  EXPECT_EQ(message.rfind(at(2, ""), 0), 0u) << message;
}

TEST_F(RecipeTest, FilesErrors) {
  EXPECT_EQ(error("[files]\n\"conf/app.conf\" = \"etc/app.conf\"\n"),
            at(2, "files: image path 'etc/app.conf' must be absolute, without '..' or control characters"));
  EXPECT_EQ(error("[files]\n\"conf\" = \"/etc/../root\"\n"),
            at(2, "files: image path '/etc/../root' must be absolute, without '..' or control characters"));
  EXPECT_EQ(error("[files]\n\"conf\" = \"/\"\n"),
            at(2, "files: image path '/' is the root itself: name a path below it"));
  EXPECT_EQ(error("[files]\n\"conf\" = \"/./\"\n"),
            at(2, "files: image path '/./' is the root itself: name a path below it"));
  EXPECT_EQ(error("[files]\n\"conf\" = \"/etc\"\n\"missing.conf\" = \"/etc/m\"\n"),
            at(3, "files: " + (images / "missing.conf").string() + ": No such file or directory"));
  EXPECT_EQ(error("[files]\n\"conf/app.conf\" = \"/etc/a\"\n\"conf/sub/x\" = \"/etc//a/\"\n"),
            at(3, "files: image path '/etc/a' is also the target of 'conf/app.conf'"));
  EXPECT_EQ(error("[files]\n\"conf\" = 1\n"),
            at(2, "files: 'conf' must map to an image path (a string), not an integer"));
  // A top-level key written after [files] lands in the table: say so.
  std::string message = error("[files]\n\"conf\" = \"/etc/c\"\nrun = [\"true\"]\n");
  EXPECT_EQ(message.rfind(at(3, "files: 'run' must map"), 0), 0u) << message;
  EXPECT_NE(message.find("'run' is a top-level key"), std::string::npos) << message;
  EXPECT_EQ(error("files = [\"conf\"]\n"), at(1, "`files` must be a table of host path = image path, not a list"));
  // Absolute host paths are taken as they are.
  Recipe r = parse("[files]\n\"" + (images / "conf" / "app.conf").string() + "\" = \"/etc/a\"\n");
  EXPECT_EQ(r.files.at(0).from, images / "conf" / "app.conf");
}

TEST_F(RecipeTest, ServiceErrors) {
  EXPECT_EQ(error("[[service]]\nname = \"a\"\ncommand = \"x\"\nready = \"tcp:0\"\n"),
            at(4, "service 'a': bad readiness check 'tcp:0': the port must be from 1 to 65535"));
  EXPECT_EQ(error("[[service]]\nname = \"a\"\ncommand = \"x\"\nready = \"tcp:70000\"\n"),
            at(4, "service 'a': bad readiness check 'tcp:70000': the port must be from 1 to 65535"));
  EXPECT_EQ(error("[[service]]\nname = \"a\"\ncommand = \"x\"\nready = \"http://x\"\n"),
            at(4,
               "service 'a': bad readiness check 'http://x': use tcp:PORT, unix:/PATH (or just /PATH) or "
               "command:SHELL COMMAND"));
  EXPECT_EQ(error("[[service]]\nname = \"a\"\ncommand = \"x\"\n\n[[service]]\nname = \"a\"\ncommand = \"y\"\n"),
            at(6, "service 'a' is already defined on line 2"));
  EXPECT_EQ(error("[[service]]\nname = \"a\"\n"), at(1, "service 'a' has no `command`"));
  EXPECT_EQ(error("[[service]]\ncommand = \"a\"\n"), at(1, "[[service]] has no `name`"));
  EXPECT_EQ(error("[[service]]\nname = \"a\"\ncommand = \"x\"\nport = 5\n"),
            at(4, "unknown key 'port' in [[service]]; the keys are: name, command, ready, ready_timeout"));
  std::string message = error("[[service]]\nname = \"a\"\ncommand = \"x\"\npackages = []\n");
  EXPECT_EQ(message.rfind(at(4, "unknown key 'packages' in [[service]] ('packages' is a top-level key"), 0), 0u)
      << message;
  EXPECT_EQ(error("[[service]]\nname = \"a\"\ncommand = \"x\"\nready_timeout = 0\n"),
            at(4, "service 'a': `ready_timeout` must be more than 0 and at most 3600 seconds"));
  EXPECT_EQ(error("[[service]]\nname = \"a\"\ncommand = \"x\"\nready_timeout = 3601\n"),
            at(4, "service 'a': `ready_timeout` must be more than 0 and at most 3600 seconds"));
  EXPECT_EQ(error("[[service]]\nname = \"a\"\ncommand = \"x\"\nready_timeout = \"60\"\n"),
            at(4, "`ready_timeout` must be a number of seconds, not a string"));
  EXPECT_EQ(error("[service]\nname = \"a\"\n"),
            at(1, "`service` must be a list of tables: write each service as a [[service]] table"));
}

TEST_F(RecipeTest, ReadyChecksRoundTrip) {
  for (const char* spec : {"tcp:1", "tcp:5432", "tcp:65535", "unix:/run/pg.sock", "command:pg_isready -q", ""})
    EXPECT_EQ(parse_ready(spec).spec(), spec);
  EXPECT_EQ(parse_ready("/run/x/../pg.sock").spec(), "unix:/run/pg.sock");
  EXPECT_EQ(parse_ready("command:test -e /x").command, "test -e /x");
  for (const char* spec : {"tcp:/run/x", "tcp:0", "tcp:65536", "tcp:-1", "tcp:", "tcp:80x", "unix:run/x", "unix:/run/",
                           "command:", "command:  ", "5432"})
    EXPECT_THROW(parse_ready(spec), Error) << spec;
  EXPECT_THROW(parse_ready("unix:/" + std::string(200, 'a')), Error);
  ReadyCheck r = parse_ready("tcp:8080");
  EXPECT_EQ(parse_ready(r.spec()), r);
}

TEST_F(RecipeTest, DigestIgnoresLayoutAndPlaceButNotContent) {
  std::string base = recipe_digest(parse(kFullRecipe));
  EXPECT_EQ(base.size(), 64u);
  // The same recipe, reformatted, with other comments and key order.
  const char* reformatted = R"(
[[service]]
name = "postgresql"   # the database
command = 'pg_ctlcluster 15 main start'
ready_timeout = 90.0
ready = "tcp:5432"
[[service]]
name = "sock"
ready = "unix:/run/x.sock"
command = "socat ..."
ready_timeout = 0.5
[[service]]
command = "sleep infinity"
name = "plain"
)";
  std::string head =
      "size = 3221225472\nmirror = \"https://deb.debian.org/debian\"\nname = \"pg-15\"\nsuite = \"trixie\"\n"
      "packages = [\n  \"postgresql\",\n  \"libpq5=15.6-0+deb12u1\",\n]\n"
      "run = [\"sed -i 's/peer/trust/' /etc/postgresql/*/main/pg_hba.conf\", \"true\"]\n"
      "files = { \"conf\" = \"/etc/app\", \"./conf/../conf/app.conf\" = \"/etc/app.conf\" }\n";
  EXPECT_EQ(recipe_digest(parse(head + reformatted)), base);

  // Elsewhere on disk, with its files beside it: the same image.
  fs::path other = tmp.path() / "elsewhere";
  make_dirs(other);
  fs::copy(images / "conf", other / "conf", fs::copy_options::recursive);
  ::chmod((other / "conf" / "sub" / "x").c_str(), 0600);
  EXPECT_EQ(recipe_digest(parse_recipe(kFullRecipe, other / "pg.toml", os_release)), base);

  auto changed = [&](const std::string& from, const std::string& to) {
    std::string text = kFullRecipe;
    text.replace(text.find(from), from.size(), to);
    return recipe_digest(parse(text));
  };
  EXPECT_NE(changed("\"libpq5=15.6-0+deb12u1\"", "\"libpq5\""), base);
  EXPECT_NE(changed("\"postgresql\", \"libpq5", "\"libpq5\", \"postgresql\", \"libpq5"), base);
  EXPECT_NE(changed("\"true\"]", "\"false\"]"), base);
  EXPECT_NE(changed("tcp:5432", "tcp:5433"), base);
  EXPECT_NE(changed("ready_timeout = 90", "ready_timeout = 91"), base);

  // The files' content, modes and names below a directory count.
  write_file_atomic(images / "conf" / "app.conf", "port = 2\n");
  std::string after_content = recipe_digest(parse(kFullRecipe));
  EXPECT_NE(after_content, base);
  ::chmod((images / "conf" / "app.conf").c_str(), 0600);
  std::string after_mode = recipe_digest(parse(kFullRecipe));
  EXPECT_NE(after_mode, after_content);
  write_file_atomic(images / "conf" / "sub" / "y", "");
  std::string after_new = recipe_digest(parse(kFullRecipe));
  EXPECT_NE(after_new, after_mode);
  fs::create_symlink("x", images / "conf" / "sub" / "link");
  std::string after_link = recipe_digest(parse(kFullRecipe));
  EXPECT_NE(after_link, after_new);
  fs::remove(images / "conf" / "sub" / "link");
  fs::create_symlink("y", images / "conf" / "sub" / "link");
  EXPECT_NE(recipe_digest(parse(kFullRecipe)), after_link);
}

}  // namespace
}  // namespace kestrel::image
