// Topologies: reading a file, every check with its "PATH:LINE:" (or, for a
// spec built in code, "nodes[I]:"/"links[I]:"), addresses, and the network
// plan: NICs, MACs, routes through forwarding nodes, the uplink, hosts.
#include <gtest/gtest.h>

#include <map>
#include <set>
#include <string>

#include "test_support.hpp"
#include "topology/spec.hpp"
#include "util/error.hpp"
#include "util/fs.hpp"

namespace kestrel::topology {
namespace {

class TopologySpecTest : public ::testing::Test {
 protected:
  TempDir tmp{"/tmp", "kestrel-topology-test-"};
  fs::path file = tmp.path() / "shop.toml";
  fs::path recipe = tmp.path() / "images" / "pg.toml";

  void SetUp() override {
    make_dirs(recipe.parent_path());
    write_file_atomic(recipe, "packages = [\"postgresql\"]\n");
  }
  Spec parse(const std::string& text) { return parse_spec(text, file); }
  // The message parse() throws, or "" if it does not.
  std::string error(const std::string& text) {
    return test::error_message([&] { parse(text); });
  }
  // `message` at `line` of the file.
  std::string at(int line, const std::string& message) {
    return file.string() + ":" + std::to_string(line) + ": " + message;
  }
};

// The message check_spec throws, or "".
std::string check_error(const Spec& spec) {
  return test::error_message([&] { check_spec(spec); });
}

Address addr(const std::string& text) { return parse_address(text); }

NodeSpec node(const std::string& name, bool forward = false, bool uplink = false) {
  NodeSpec n;
  n.name = name;
  n.forward = forward;
  n.uplink = uplink;
  return n;
}

LinkSpec link(const std::string& a, const std::string& b, const char* addr_a = nullptr, const char* addr_b = nullptr) {
  LinkSpec l;
  l.a = a;
  l.b = b;
  if (addr_a) l.addr_a = parse_address(addr_a);
  if (addr_b) l.addr_b = parse_address(addr_b);
  return l;
}

constexpr const char* kGoodFile = R"(# a web shop
[[node]]
name = "app"
memory = 1024
cpus = 2
share = ["data", "/srv/logs:rw"]
uplink = true

[[node]]
name = "db"
image = "images/pg.toml"
forward = false

[[link]]
nodes = ["app", "db"]
addresses = ["10.9.0.1/24", "10.9.0.2/24"]
)";

TEST_F(TopologySpecTest, GoodFile) {
  Spec spec = parse(kGoodFile);
  EXPECT_EQ(spec.name, "shop");
  EXPECT_EQ(spec.file, file);
  ASSERT_EQ(spec.nodes.size(), 2u);
  const NodeSpec& app = spec.nodes[0];
  EXPECT_EQ(app.name, "app");
  EXPECT_EQ(app.image, "");
  EXPECT_EQ(app.memory_mib, 1024u);
  EXPECT_EQ(app.cpus, 2u);
  EXPECT_EQ(app.shares, (std::vector<std::string>{(tmp.path() / "data").string() + ":ro", "/srv/logs:rw"}));
  EXPECT_FALSE(app.forward);
  EXPECT_TRUE(app.uplink);
  EXPECT_EQ(app.line, 2);
  const NodeSpec& db = spec.nodes[1];
  EXPECT_EQ(db.name, "db");
  EXPECT_EQ(db.image, recipe.string());
  EXPECT_EQ(db.memory_mib, 0u);
  EXPECT_EQ(db.cpus, 0u);
  EXPECT_TRUE(db.shares.empty());
  EXPECT_FALSE(db.uplink);
  EXPECT_EQ(db.line, 9);
  ASSERT_EQ(spec.links.size(), 1u);
  EXPECT_EQ(spec.links[0].a, "app");
  EXPECT_EQ(spec.links[0].b, "db");
  EXPECT_EQ(spec.links[0].addr_a, addr("10.9.0.1/24"));
  EXPECT_EQ(spec.links[0].addr_b, addr("10.9.0.2/24"));
  EXPECT_EQ(spec.links[0].line, 14);
  EXPECT_NO_THROW(check_spec(spec));

  // An image name is kept as it is; a name in the file wins over the stem.
  spec = parse("name = \"web-1\"\n[[node]]\nname = \"a\"\nimage = \"pg-15\"\n");
  EXPECT_EQ(spec.name, "web-1");
  EXPECT_EQ(spec.nodes[0].image, "pg-15");
  EXPECT_TRUE(spec.links.empty());
}

TEST_F(TopologySpecTest, LoadReadsTheFileAndNamesAMissingOne) {
  write_file_atomic(file, kGoodFile);
  EXPECT_EQ(load_spec(file).nodes.size(), 2u);
  try {
    load_spec(tmp.path() / "none.toml");
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()),
              "cannot read topology " + (tmp.path() / "none.toml").string() + ": No such file or directory");
  }
}

TEST_F(TopologySpecTest, NameFromTheFileStem) {
  file = tmp.path() / "My Shop_2.toml";
  EXPECT_EQ(parse("[[node]]\nname = \"a\"\n").name, "my-shop-2");
  file = tmp.path() / "_x.toml";
  EXPECT_EQ(parse("[[node]]\nname = \"a\"\n").name, "x");
  file = tmp.path() / "__.toml";
  EXPECT_EQ(parse("[[node]]\nname = \"a\"\n").name, "topology");
  file = tmp.path() / (std::string(40, 'a') + ".toml");
  EXPECT_EQ(parse("[[node]]\nname = \"a\"\n").name, std::string(32, 'a'));
}

TEST_F(TopologySpecTest, ReadingErrors) {
  EXPECT_EQ(error("nmae = \"x\"\n"),
            at(1, "unknown key 'nmae' (did you mean 'name'?); the keys are: name, node, link"));
  EXPECT_EQ(error("[[node]]\nname = \"a\"\nimgae = \"x\"\n"),
            at(3,
               "unknown key 'imgae' in [[node]] (did you mean 'image'?); the keys are: name, image, memory, cpus, "
               "share, forward, uplink"));
  EXPECT_EQ(error("[[node]]\nname = \"a\"\n[[link]]\nnodes = [\"a\", \"b\"]\nlink = 1\n"),
            at(5,
               "unknown key 'link' in [[link]] ('link' is a top-level key: put it before the first [table]); the "
               "keys are: nodes, addresses"));
  EXPECT_EQ(error("name = \"Shop\"\n"), at(1, "name \"Shop\" must match [a-z0-9][a-z0-9-]{0,31}"));
  EXPECT_EQ(error("name = 1\n"), at(1, "`name` must be a string, not an integer"));
  EXPECT_EQ(error("[node]\nname = \"a\"\n"),
            at(1, "`node` must be a list of tables: write each node as a [[node]] table"));
  EXPECT_EQ(error("\n[[node]]\nmemory = 512\n"), at(2, "[[node]] has no `name`"));
  EXPECT_EQ(error("[[node]]\nname = \"Db\"\n"), at(2, "node name \"Db\" must match [a-z0-9][a-z0-9-]{0,31}"));
  EXPECT_EQ(error("[[node]]\nname = \"-db\"\n"), at(2, "node name \"-db\" must match [a-z0-9][a-z0-9-]{0,31}"));
  EXPECT_EQ(error("[[node]]\nname = \"" + std::string(33, 'a') + "\"\n"),
            at(2, "node name \"" + std::string(33, 'a') + "\" must match [a-z0-9][a-z0-9-]{0,31}"));
  EXPECT_EQ(error("[[node]]\nname = \"program\"\n"), at(2, "node name \"program\" is reserved"));
  EXPECT_EQ(error("[[node]]\nname = \"links\"\n"), at(2, "node name \"links\" is reserved"));
  EXPECT_EQ(error("[[node]]\nname = \"a\"\nmemory = 32\n"),
            at(3, "`memory` 32 is out of range: from 64 to 1048576 (MiB)"));
  EXPECT_EQ(error("[[node]]\nname = \"a\"\nmemory = \"1G\"\n"), at(3, "`memory` must be an integer, not a string"));
  EXPECT_EQ(error("[[node]]\nname = \"a\"\ncpus = 65\n"), at(3, "`cpus` 65 is out of range: from 1 to 64"));
  EXPECT_EQ(error("[[node]]\nname = \"a\"\ncpus = 0\n"), at(3, "`cpus` 0 is out of range: from 1 to 64"));
  EXPECT_EQ(error("[[node]]\nname = \"a\"\nshare = \"/srv\"\n"),
            at(3, "`share` must be a list of strings, not a string"));
  EXPECT_EQ(error("[[node]]\nname = \"a\"\nshare = [\n\"/srv\",\n\"/x:rx\"]\n"),
            at(5, "share: '/x:rx': expected PATH, PATH:ro or PATH:rw"));
  EXPECT_EQ(error("[[node]]\nname = \"a\"\nshare = [\"/\"]\n"),
            at(3, "share: '/': the root is shared already (read-only, with a throw-away layer)"));
  EXPECT_EQ(error("[[node]]\nname = \"a\"\nforward = \"yes\"\n"),
            at(3, "`forward` must be true or false, not a string"));
  EXPECT_EQ(error("[[node]]\nname = \"a\"\nuplink = 1\n"), at(3, "`uplink` must be true or false, not an integer"));
  EXPECT_EQ(error("[[node]]\nname = \"a\"\nimage = \"\"\n"),
            at(3, "`image` is empty: leave it out to run the node on the host's root"));
  EXPECT_EQ(error("[[node]]\nname = \"a\"\nimage = \"images/none.toml\"\n"),
            at(3, "image recipe " + (tmp.path() / "images/none.toml").string() + ": No such file or directory"));
  EXPECT_EQ(error("[[node]]\nname = \"a\"\nimage = \"none.toml\"\n"),
            at(3, "image recipe " + (tmp.path() / "none.toml").string() + ": No such file or directory"));
  EXPECT_EQ(error("[[node]]\nname = \"a\"\nimage = \"images/\"\n"),
            at(3, "image recipe " + (tmp.path() / "images/").string() + " is not a file"));
  EXPECT_EQ(error("[[node]]\nname = \"a\"\nimage = \"pg 15\"\n"), at(3, "image \"pg 15\" is not an image name or id"));

  const std::string two = "[[node]]\nname = \"a\"\n[[node]]\nname = \"b\"\n";  // lines 1-4
  EXPECT_EQ(error(two + "[[link]]\naddresses = [\"10.9.0.1/24\", \"10.9.0.2/24\"]\n"),
            at(5, "[[link]] has no `nodes`"));
  EXPECT_EQ(error(two + "[[link]]\nnodes = [\"a\"]\n"), at(6, "`nodes` must name two nodes, not 1"));
  EXPECT_EQ(error(two + "[[link]]\nnodes = \"a\"\n"), at(6, "`nodes` must be a list of strings, not a string"));
  EXPECT_EQ(error(two + "[[link]]\nnodes = [\"a\", \"b\"]\naddresses = [\"10.9.0.1/24\"]\n"),
            at(7, "`addresses` must give two addresses, one for each of `nodes`, not 1"));
  EXPECT_EQ(error(two + "[[link]]\nnodes = [\"a\", \"b\"]\naddresses = [\"10.9.0.1/24\",\n\"10.9.0.256/24\"]\n"),
            at(8, "\"10.9.0.256/24\" is not an IPv4 address with a prefix length, like 10.9.0.1/24"));
  EXPECT_EQ(error(two + "[[link]]\nnodes = [\"a\", \"b\"]\naddresses = [\"10.9.0.1/31\", \"10.9.0.2/31\"]\n"),
            at(7, "\"10.9.0.1/31\": the prefix length must be from 8 to 30"));
  EXPECT_EQ(error("link = 1\n" + two), at(1, "`link` must be a list of tables: write each link as a [[link]] table"));
}

TEST_F(TopologySpecTest, SyntaxErrorsTakeTomlsLine) {
  std::string message = error("[[node]]\nname = \"a\"\n\nname = \"b\"\n");
  EXPECT_EQ(message.rfind(at(4, ""), 0), 0u) << message;
  message = error("[[node]\n");
  EXPECT_EQ(message.rfind(at(1, ""), 0), 0u) << message;
}

TEST_F(TopologySpecTest, CheckErrorsInAFile) {
  EXPECT_EQ(error(""), file.string() + ": the topology has no nodes: add a [[node]] table");
  EXPECT_EQ(error("name = \"x\"\n"), file.string() + ": the topology has no nodes: add a [[node]] table");
  const std::string two = "[[node]]\nname = \"app\"\n[[node]]\nname = \"db\"\n";  // lines 1-4
  EXPECT_EQ(error(two + "\n[[node]]\nname = \"db\"\n"), at(6, "node \"db\" is declared twice (first on line 3)"));
  EXPECT_EQ(error(two + "[[link]]\nnodes = [\"app\", \"dbb\"]\n"),
            at(5, "link app-dbb names unknown node \"dbb\" (nodes: app, db)"));
  EXPECT_EQ(error(two + "[[link]]\nnodes = [\"db\", \"db\"]\n"), at(5, "link db-db names node \"db\" twice"));
  EXPECT_EQ(error(two + "[[link]]\nnodes = [\"app\", \"db\"]\n[[link]]\nnodes = [\"db\", \"app\"]\n"),
            at(7, "link db-app joins the same nodes as link app-db (line 5)"));

  // Addresses.
  auto one_link = [&](const std::string& a, const std::string& b) {
    return error(two + "[[link]]\nnodes = [\"app\", \"db\"]\naddresses = [\"" + a + "\", \"" + b + "\"]\n");
  };
  EXPECT_EQ(one_link("10.9.0.1/24", "10.9.1.2/24"),
            at(5, "link app-db's ends 10.9.0.1/24 and 10.9.1.2/24 are in different subnets"));
  EXPECT_EQ(one_link("10.9.0.1/24", "10.9.0.2/25"),
            at(5, "link app-db's ends 10.9.0.1/24 and 10.9.0.2/25 are in different subnets"));
  EXPECT_EQ(one_link("10.9.0.0/24", "10.9.0.2/24"),
            at(5, "link app-db's address 10.9.0.0/24 is the subnet's network address"));
  EXPECT_EQ(one_link("10.9.0.1/24", "10.9.0.255/24"),
            at(5, "link app-db's address 10.9.0.255/24 is the subnet's broadcast address"));
  EXPECT_EQ(one_link("10.9.0.1/30", "10.9.0.3/30"),
            at(5, "link app-db's address 10.9.0.3/30 is the subnet's broadcast address"));
  EXPECT_EQ(one_link("10.9.0.1/24", "10.9.0.1/24"), at(5, "link app-db gives both ends the address 10.9.0.1"));
  EXPECT_EQ(one_link("127.0.0.1/8", "127.0.0.2/8"),
            at(5, "link app-db's address 127.0.0.1/8 is not a unicast address (0/8, 127/8 and 224/3 are not)"));
  EXPECT_EQ(one_link("10.9.0.1/30", "10.9.0.2/30"), "");

  const std::string three = two + "[[node]]\nname = \"r\"\n";  // lines 1-6
  std::string link1 = "[[link]]\nnodes = [\"app\", \"r\"]\naddresses = [\"10.9.0.1/16\", \"10.9.0.2/16\"]\n";  // 7-9
  EXPECT_EQ(
      error(three + link1 + "[[link]]\nnodes = [\"app\", \"db\"]\naddresses = [\"10.9.0.1/24\", \"10.9.0.3/24\"]\n"),
      at(10, "address 10.9.0.1 is given twice (also on line 7)"));
  EXPECT_EQ(
      error(three + link1 + "[[link]]\nnodes = [\"app\", \"db\"]\naddresses = [\"10.9.5.1/24\", \"10.9.5.2/24\"]\n"),
      at(10, "link app-db's subnet 10.9.5.0/24 overlaps link app-r's 10.9.0.0/16 (line 7)"));
  EXPECT_EQ(
      error(three + link1 + "[[link]]\nnodes = [\"app\", \"db\"]\naddresses = [\"10.8.5.1/8\", \"10.8.5.2/8\"]\n"),
      at(10, "link app-db's subnet 10.0.0.0/8 overlaps link app-r's 10.9.0.0/16 (line 7)"));
  // The uplink's network, only while a node has an uplink.
  const std::string uplinked = "[[node]]\nname = \"app\"\n[[node]]\nname = \"db\"\nuplink = true\n";  // 1-5
  const std::string link_10_0_2 =
      "[[link]]\nnodes = [\"app\", \"db\"]\naddresses = [\"10.0.2.1/23\", \"10.0.2.2/23\"]\n";
  EXPECT_EQ(
      error(uplinked + link_10_0_2),
      at(6,
         "link app-db's subnet 10.0.2.0/23 overlaps the uplink network 10.0.2.0/24 (node \"db\" has uplink = true)"));
  EXPECT_EQ(error(two + link_10_0_2), "");
}

TEST_F(TopologySpecTest, Limits) {
  std::string text;
  for (int i = 0; i < 17; ++i) text += "[[node]]\nname = \"n" + std::to_string(i) + "\"\n";
  EXPECT_EQ(error(text), at(33, "node \"n16\" is one too many: a topology has at most 16 nodes"));

  // 9 nodes: n0 linked to the 8 others is fine, a 9th link on n0 is not.
  text.clear();
  for (int i = 0; i < 10; ++i) text += "[[node]]\nname = \"n" + std::to_string(i) + "\"\n";             // lines 1-20
  for (int i = 1; i <= 8; ++i) text += "[[link]]\nnodes = [\"n0\", \"n" + std::to_string(i) + "\"]\n";  // 21-36
  EXPECT_EQ(error(text), "");
  EXPECT_EQ(error(text + "[[link]]\nnodes = [\"n9\", \"n0\"]\n"),
            at(37, "link n9-n0 gives node \"n0\" link number 9: a node has at most 8 links"));

  // 16 nodes in a ring (16 links) plus 16 chords (i, i+2): 32 links; one more is too many.
  text.clear();
  for (int i = 0; i < 16; ++i) text += "[[node]]\nname = \"n" + std::to_string(i) + "\"\n";  // 1-32
  for (int step : {1, 2})
    for (int i = 0; i < 16; ++i)
      text += "[[link]]\nnodes = [\"n" + std::to_string(i) + "\", \"n" + std::to_string((i + step) % 16) + "\"]\n";
  EXPECT_EQ(error(text), "");  // lines 33-96
  EXPECT_EQ(error(text + "[[link]]\nnodes = [\"n0\", \"n3\"]\n"),
            at(97, "link n0-n3 is one too many: a topology has at most 32 links"));
}

TEST(TopologyCheck, CodeBuiltSpecsNameTheNodeOrLink) {
  Spec spec;
  EXPECT_EQ(check_error(spec), "the topology has no nodes");
  spec.nodes = {node("app"), node("db")};
  EXPECT_EQ(check_error(spec), "");  // an empty name is the caller's to choose
  spec.name = "Shop";
  EXPECT_EQ(check_error(spec), "topology name \"Shop\" must match [a-z0-9][a-z0-9-]{0,31}");
  spec.name = "shop";

  spec.nodes.push_back(node("app"));
  EXPECT_EQ(check_error(spec), "nodes[2]: node \"app\" is declared twice (first in nodes[0])");
  spec.nodes.back().name = "";
  EXPECT_EQ(check_error(spec), "nodes[2]: node name \"\" must match [a-z0-9][a-z0-9-]{0,31}");
  spec.nodes.pop_back();

  spec.nodes[1].memory_mib = 10;
  EXPECT_EQ(check_error(spec), "nodes[1]: `memory` 10 is out of range: from 64 to 1048576 (MiB)");
  spec.nodes[1].memory_mib = 0;
  spec.nodes[1].shares = {"data:rw"};
  EXPECT_EQ(check_error(spec), "nodes[1]: share: 'data:rw': the path must be absolute");
  spec.nodes[1].shares = {"/srv/data:rw", "/srv/x"};
  EXPECT_EQ(check_error(spec), "");
  spec.nodes[1].image = "images/pg.toml";
  EXPECT_EQ(check_error(spec), "nodes[1]: image recipe \"images/pg.toml\" must be an absolute path");
  spec.nodes[1].image = "pg-15";
  EXPECT_EQ(check_error(spec), "");

  spec.links = {link("app", "db", "10.9.0.1/16", "10.9.0.2/16"), link("db", "app", "10.9.1.1/24", "10.9.1.2/24")};
  EXPECT_EQ(check_error(spec), "links[1]: link db-app joins the same nodes as link app-db (links[0])");
  spec.nodes.push_back(node("r"));
  spec.links[1].a = "r";
  EXPECT_EQ(check_error(spec),
            "links[1]: link r-app's subnet 10.9.1.0/24 overlaps link app-db's 10.9.0.0/16 (links[0])");
  spec.links[1].addr_a = addr("10.9.0.2/24");
  spec.links[1].addr_b = addr("10.9.0.3/24");
  EXPECT_EQ(check_error(spec), "links[1]: address 10.9.0.2 is given twice (also in links[0])");
  spec.links[1].addr_b.reset();
  EXPECT_EQ(check_error(spec), "links[1]: link r-app has an address for one end only: give both or neither");
  spec.links[1].addr_a = Address{0x0a090101, 31};
  spec.links[1].addr_b = Address{0x0a090102, 31};
  EXPECT_EQ(check_error(spec), "links[1]: link r-app's address 10.9.1.1/31 has a prefix length outside 8 to 30");
  spec.links[1] = link("r", "dbb");
  EXPECT_EQ(check_error(spec), "links[1]: link r-dbb names unknown node \"dbb\" (nodes: app, db, r)");
  spec.links[1] = link("r", "app");
  EXPECT_EQ(check_error(spec), "");

  // Every 10.42.N.0/24 taken: the link without addresses gets none.
  spec.links[0] = link("app", "db", "10.42.0.1/16", "10.42.0.2/16");
  EXPECT_EQ(check_error(spec),
            "links[1]: link r-app gets no address: every 10.42.N.0/24 (N from 1 to 255) overlaps a given subnet; give "
            "its addresses");
}

TEST(TopologyAddress, ParseAndFormat) {
  Address a = parse_address("10.42.1.1/24");
  EXPECT_EQ(a.ip, 0x0a2a0101u);
  EXPECT_EQ(a.prefix, 24);
  EXPECT_EQ(a.str(), "10.42.1.1/24");
  EXPECT_EQ(a.ip_str(), "10.42.1.1");
  EXPECT_EQ(a.netmask(), 0xffffff00u);
  EXPECT_EQ(a.network(), 0x0a2a0100u);
  EXPECT_EQ(parse_address("192.168.255.254/8").netmask(), 0xff000000u);
  EXPECT_EQ(parse_address("0.0.0.1/30").str(), "0.0.0.1/30");
  EXPECT_EQ((Address{0, 0}).netmask(), 0u);
  EXPECT_EQ((Address{0, 0}).str(), "0.0.0.0/0");
  EXPECT_EQ(format_ip(0x0a000202), "10.0.2.2");
  EXPECT_TRUE(overlaps(parse_address("10.9.0.1/16"), parse_address("10.9.200.1/24")));
  EXPECT_FALSE(overlaps(parse_address("10.9.0.1/24"), parse_address("10.9.1.1/24")));
  for (const char* bad : {"10.9.0.1", "10.9.0/24", "10.9.0.1.2/24", "10.9.0.256/24", "+10.9.0.1/24", " 10.9.0.1/24",
                          "10.9.0.1/24 ", "10.09.0.1/24", "10.9.0.1/", "10.9.0.1/+24", "10.9.0.1/024", "10..0.1/24",
                          "a.b.c.d/24", "10.9.0.1/24/1", "1000.9.0.1/24", ""}) {
    try {
      parse_address(bad);
      ADD_FAILURE() << bad << " parsed";
    } catch (const Error& e) {
      EXPECT_EQ(std::string(e.what()),
                "\"" + std::string(bad) + "\" is not an IPv4 address with a prefix length, like 10.9.0.1/24");
    }
  }
  for (const char* bad : {"10.9.0.1/7", "10.9.0.1/31", "10.9.0.1/32", "10.9.0.1/0"}) {
    try {
      parse_address(bad);
      ADD_FAILURE() << bad << " parsed";
    } catch (const Error& e) {
      EXPECT_EQ(std::string(e.what()), "\"" + std::string(bad) + "\": the prefix length must be from 8 to 30");
    }
  }
}

TEST(TopologyPlan, AutomaticAddressesSkipGivenSubnets) {
  Spec spec;
  spec.nodes = {node("a"), node("b"), node("c"), node("d")};
  spec.links = {link("a", "b"), link("b", "c", "10.42.1.5/24", "10.42.1.6/24"), link("c", "d"),
                link("a", "c", "10.42.2.129/25", "10.42.2.130/25"), link("a", "d")};
  ASSERT_EQ(check_error(spec), "");
  auto addresses = link_addresses(spec);
  ASSERT_EQ(addresses.size(), 5u);
  EXPECT_EQ(addresses[0].first.str(), "10.42.3.1/24");
  EXPECT_EQ(addresses[0].second.str(), "10.42.3.2/24");
  EXPECT_EQ(addresses[1].first.str(), "10.42.1.5/24");
  EXPECT_EQ(addresses[2].first.str(), "10.42.4.1/24");
  EXPECT_EQ(addresses[2].second.str(), "10.42.4.2/24");
  EXPECT_EQ(addresses[4].first.str(), "10.42.5.1/24");

  auto plan = plan_network(spec);
  ASSERT_EQ(plan.size(), 4u);
  // a's NICs: its links in the order of spec.links.
  ASSERT_EQ(plan[0].nics.size(), 3u);
  EXPECT_EQ(plan[0].nics[0].link, 0);
  EXPECT_EQ(plan[0].nics[0].peer, "b");
  EXPECT_EQ(plan[0].nics[0].address.str(), "10.42.3.1/24");
  EXPECT_EQ(plan[0].nics[1].link, 3);
  EXPECT_EQ(plan[0].nics[1].peer, "c");
  EXPECT_EQ(plan[0].nics[1].address.str(), "10.42.2.129/25");
  EXPECT_EQ(plan[0].nics[2].link, 4);
  EXPECT_EQ(plan[0].nics[2].address.str(), "10.42.5.1/24");
  // d is the b end of two links.
  ASSERT_EQ(plan[3].nics.size(), 2u);
  EXPECT_EQ(plan[3].nics[0].address.str(), "10.42.4.2/24");
  EXPECT_EQ(plan[3].nics[1].address.str(), "10.42.5.2/24");
}

// a — r — b: a reaches r—b's subnet through r only when r forwards.
Spec chain(bool forward) {
  Spec spec;
  spec.nodes = {node("a"), node("r", forward), node("b")};
  spec.links = {link("a", "r", "10.1.0.1/24", "10.1.0.2/24"), link("r", "b", "10.2.0.1/24", "10.2.0.2/24")};
  return spec;
}

TEST(TopologyPlan, RoutesGoThroughForwardingNodes) {
  Spec spec = chain(true);
  ASSERT_EQ(check_error(spec), "");
  auto plan = plan_network(spec);
  ASSERT_EQ(plan[0].routes.size(), 1u);
  EXPECT_EQ(plan[0].routes[0].destination.str(), "10.2.0.0/24");
  EXPECT_EQ(format_ip(plan[0].routes[0].gateway), "10.1.0.2");  // r's address on a—r
  ASSERT_EQ(plan[2].routes.size(), 1u);
  EXPECT_EQ(plan[2].routes[0].destination.str(), "10.1.0.0/24");
  EXPECT_EQ(format_ip(plan[2].routes[0].gateway), "10.2.0.1");
  EXPECT_TRUE(plan[1].routes.empty());  // on both subnets
  EXPECT_TRUE(plan[1].forward);
  EXPECT_FALSE(plan[0].forward);
  EXPECT_TRUE(plan[0].nameservers.empty());

  plan = plan_network(chain(false));
  EXPECT_TRUE(plan[0].routes.empty());
  EXPECT_TRUE(plan[2].routes.empty());
}

TEST(TopologyPlan, FewestHopsThenLowerLinks) {
  // a — r1 — r2 — b, and a — r3 — b: b's far subnet is nearer through r3.
  Spec spec;
  spec.nodes = {node("a"), node("r1", true), node("r2", true), node("r3", true), node("b"), node("c")};
  spec.links = {link("a", "r1", "10.1.0.1/24", "10.1.0.2/24"), link("r1", "r2", "10.2.0.1/24", "10.2.0.2/24"),
                link("r2", "b", "10.3.0.1/24", "10.3.0.2/24"), link("a", "r3", "10.4.0.1/24", "10.4.0.2/24"),
                link("r3", "b", "10.5.0.1/24", "10.5.0.2/24"), link("b", "c", "10.6.0.1/24", "10.6.0.2/24")};
  ASSERT_EQ(check_error(spec), "");
  auto plan = plan_network(spec);
  std::map<std::string, std::string> routes;
  for (const Route& r : plan[0].routes) routes[r.destination.str()] = format_ip(r.gateway);
  EXPECT_EQ(routes, (std::map<std::string, std::string>{
                        {"10.2.0.0/24", "10.1.0.2"},  // r1, 1 hop
                        {"10.3.0.0/24", "10.1.0.2"},  // r2, 2 hops through r1 (b, as near through r3, does
                                                      // not forward)
                        {"10.5.0.0/24", "10.4.0.2"},  // r3, 1 hop
                    }));
  // b does not forward: c's subnet is out of a's reach, and c sees no further than b.
  EXPECT_TRUE(plan[5].routes.empty());

  // A tie: two 1-hop paths; the lower link wins.
  Spec diamond;
  diamond.nodes = {node("a"), node("r1", true), node("r2", true), node("b", true)};
  diamond.links = {link("a", "r2", "10.1.0.1/24", "10.1.0.2/24"), link("a", "r1", "10.2.0.1/24", "10.2.0.2/24"),
                   link("r1", "b", "10.3.0.1/24", "10.3.0.2/24"), link("r2", "b", "10.4.0.1/24", "10.4.0.2/24"),
                   link("b", "a", "10.5.0.1/24", "10.5.0.2/24")};
  ASSERT_EQ(check_error(diamond), "");
  plan = plan_network(diamond);
  routes.clear();
  for (const Route& r : plan[0].routes) routes[r.destination.str()] = format_ip(r.gateway);
  EXPECT_EQ(routes, (std::map<std::string, std::string>{
                        {"10.3.0.0/24", "10.2.0.2"},  // r1 (link 1) or b (link 4): 1 hop each, link 1 wins
                        {"10.4.0.0/24", "10.1.0.2"},  // r2 (link 0)
                    }));
}

TEST(TopologyPlan, UplinkGivesADefaultRouteAndDns) {
  Spec spec = chain(true);
  spec.nodes[0].uplink = true;
  auto plan = plan_network(spec);
  ASSERT_EQ(plan[0].nics.size(), 2u);
  EXPECT_EQ(plan[0].nics[1].link, -1);
  EXPECT_EQ(plan[0].nics[1].peer, "");
  EXPECT_EQ(plan[0].nics[1].address.str(), "10.0.2.15/24");
  ASSERT_EQ(plan[0].routes.size(), 2u);
  EXPECT_EQ(plan[0].routes[1].destination.str(), "0.0.0.0/0");  // last
  EXPECT_EQ(format_ip(plan[0].routes[1].gateway), "10.0.2.2");
  EXPECT_EQ(plan[0].nameservers, (std::vector<std::string>{"10.0.2.3"}));
  EXPECT_TRUE(plan[2].nameservers.empty());
  EXPECT_EQ(plan[2].routes.size(), 1u);
}

TEST(TopologyPlan, MacsAreUnique) {
  Spec spec;
  for (int i = 0; i < 16; ++i) spec.nodes.push_back(node("n" + std::to_string(i), false, true));
  for (int i = 0; i < 16; ++i)
    for (int step : {1, 2}) spec.links.push_back(link("n" + std::to_string(i), "n" + std::to_string((i + step) % 16)));
  ASSERT_EQ(check_error(spec), "");
  auto plan = plan_network(spec);
  EXPECT_EQ(plan[0].nics[0].mac, "52:54:00:6b:01:00");
  EXPECT_EQ(plan[15].nics.back().mac, "52:54:00:6b:10:04");  // 4 links, then the uplink
  std::set<std::string> macs;
  size_t nics = 0;
  for (const NodeNetwork& net : plan) {
    for (const Nic& nic : net.nics) {
      macs.insert(nic.mac);
      ++nics;
    }
  }
  EXPECT_EQ(nics, 16u * 5);
  EXPECT_EQ(macs.size(), nics);
}

TEST(TopologyPlan, Hosts) {
  // a — r — b — c with r forwarding and b not; b's first link is b—c, whose
  // subnet a cannot reach, so a names b by its address on r—b. x has no NIC.
  Spec spec;
  spec.nodes = {node("a"), node("r", true), node("b"), node("c"), node("x")};
  spec.links = {link("a", "r", "10.1.0.1/24", "10.1.0.2/24"), link("b", "c", "10.3.0.1/24", "10.3.0.2/24"),
                link("r", "b", "10.2.0.1/24", "10.2.0.2/24")};
  ASSERT_EQ(check_error(spec), "");
  auto plan = plan_network(spec);
  using Hosts = std::vector<std::pair<std::string, std::string>>;
  EXPECT_EQ(plan[0].hosts, (Hosts{{"10.1.0.1", "a"}, {"10.1.0.2", "r"}, {"10.2.0.2", "b"}, {"10.3.0.2", "c"}}));
  // r shares a link with a and b; c is not reachable, so its first address.
  EXPECT_EQ(plan[1].hosts, (Hosts{{"10.1.0.1", "a"}, {"10.1.0.2", "r"}, {"10.2.0.2", "b"}, {"10.3.0.2", "c"}}));
  // c reaches nothing past b.
  EXPECT_EQ(plan[3].hosts, (Hosts{{"10.1.0.1", "a"}, {"10.1.0.2", "r"}, {"10.3.0.1", "b"}, {"10.3.0.2", "c"}}));
  EXPECT_EQ(plan[4].hosts,
            (Hosts{{"10.1.0.1", "a"}, {"10.1.0.2", "r"}, {"10.3.0.1", "b"}, {"10.3.0.2", "c"}, {"127.0.1.1", "x"}}));
  EXPECT_TRUE(plan[4].nics.empty());

  // A node with only an uplink names itself by the uplink's address.
  spec.nodes[4].uplink = true;
  plan = plan_network(spec);
  EXPECT_EQ(plan[4].hosts.back(), (std::pair<std::string, std::string>{"10.0.2.15", "x"}));
  EXPECT_EQ(plan[0].hosts.size(), 4u);  // x is left out: its only address is everyone's own
}

}  // namespace
}  // namespace kestrel::topology
