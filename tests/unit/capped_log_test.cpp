// The console log's cap: the start and the latest kept, what lay between
// replaced by one line that counts it, never more than the cap on disk.
#include "util/capped_log.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <string>

#include "util/fs.hpp"
#include "util/lockfile.hpp"

namespace kestrel {
namespace {

constexpr uint64_t kMax = 64 << 10;

std::string numbered_lines(int from, int to) {
  std::string out;
  for (int i = from; i < to; ++i) out += "line " + std::to_string(i) + " of a guest that floods its console\n";
  return out;
}

TEST(CappedLog, KeepsTheStartAndTheLatestAndCountsTheRest) {
  TempDir dir("/tmp", "kestrel-capped-log-");
  fs::path file = dir.path() / "console.log";
  write_file_atomic(file, "kestrel-agent: ready after boot\n", 0600);  // a clone's log starts with its template's
  std::string all = read_file(file);
  {
    CappedLog log(file, kMax);
    for (int i = 0; i < 400; ++i) {
      std::string chunk = numbered_lines(i * 100, (i + 1) * 100);  // ~5 KiB, 2 MB in all
      log.write(chunk);
      all += chunk;
      ASSERT_LE(fs::file_size(file), kMax) << "after chunk " << i;
    }
    std::string text = read_file(file);
    EXPECT_TRUE(text.starts_with("kestrel-agent: ready after boot\nline 0 of")) << text.substr(0, 80);
    EXPECT_TRUE(text.ends_with(numbered_lines(39999, 40000)));
    size_t marker = text.find("[kestrel: ");
    ASSERT_NE(marker, std::string::npos);
    EXPECT_EQ(text.find("[kestrel: ", marker + 1), std::string::npos);  // one marker, updated
    std::string expected = dropped_marker(log.dropped(), kMax);
    EXPECT_NE(text.find(expected), std::string::npos) << text.substr(marker, 200);
    // Everything is accounted for: what is in the file plus what was dropped.
    EXPECT_EQ(text.size() - expected.size() + log.dropped(), all.size());
    // And what is kept is what was written, in order.
    size_t head_end = text.find(expected);
    EXPECT_EQ(text.substr(0, head_end), all.substr(0, head_end));
    std::string tail = text.substr(head_end + expected.size());
    EXPECT_EQ(all.substr(all.size() - tail.size()), tail);
  }
}

TEST(CappedLog, AHugeWriteKeepsItsEnd) {
  TempDir dir("/tmp", "kestrel-capped-log-");
  fs::path file = dir.path() / "console.log";
  CappedLog log(file, kMax);
  std::string big = numbered_lines(0, 20000);  // ~1 MB at once
  log.write(big);
  EXPECT_LE(fs::file_size(file), kMax);
  EXPECT_TRUE(read_file(file).ends_with(numbered_lines(19999, 20000)));
}

TEST(CappedLog, CopiesAPipeToTheEnd) {
  TempDir dir("/tmp", "kestrel-capped-log-");
  fs::path file = dir.path() / "console.log";
  int p[2];
  ASSERT_EQ(::pipe(p), 0);
  pid_t writer = ::fork();
  ASSERT_GE(writer, 0);
  if (writer == 0) {
    ::close(p[0]);
    std::string text = numbered_lines(0, 30000);
    (void)!::write(p[1], text.data(), text.size());
    ::_exit(0);
  }
  ::close(p[1]);
  EXPECT_EQ(copy_to_capped_log(p[0], file, kMax), 0);
  ::close(p[0]);
  EXPECT_LE(fs::file_size(file), kMax);
  EXPECT_TRUE(read_file(file).ends_with(numbered_lines(29999, 30000)));
}

// Who reads the log after the VM ended waits for the writer's last bytes:
// the writer holds the log locked while it lives, through its trims.
TEST(CappedLog, HoldsTheLogLockedWhileItWrites) {
  TempDir dir("/tmp", "kestrel-capped-log-");
  fs::path file = dir.path() / "console.log";
  auto reader_gets_it = [&] {
    return LockFile::lock_existing(file, Deadline::after(std::chrono::milliseconds(50)), LockFile::Mode::kShared)
        .locked();
  };
  {
    CappedLog log(file, kMax);
    EXPECT_FALSE(fs::exists(file));  // made by the first output: a QEMU that never ran leaves none
    for (int i = 0; i < 40; ++i) log.write(numbered_lines(i * 100, (i + 1) * 100));  // trims: new files, locked too
    EXPECT_GT(log.dropped(), 0u);
    EXPECT_FALSE(reader_gets_it());
  }
  EXPECT_TRUE(reader_gets_it());
}

TEST(CappedLog, SizesForTheCap) {
  EXPECT_EQ(parse_log_max("16M"), 16u << 20);
  EXPECT_EQ(parse_log_max("64K"), 64u << 10);
  EXPECT_EQ(parse_log_max("1G"), 1u << 30);
  EXPECT_EQ(parse_log_max("1048576"), 1u << 20);
  EXPECT_FALSE(parse_log_max("1K"));  // below the least
  EXPECT_FALSE(parse_log_max(""));
  EXPECT_FALSE(parse_log_max("12X"));
  EXPECT_FALSE(parse_log_max("-5M"));
  EXPECT_FALSE(parse_log_max("99999999999999999999"));
}

}  // namespace
}  // namespace kestrel
