#include <gtest/gtest.h>

#include "proto/frame.hpp"
#include "proto/messages.hpp"
#include "proto/wire.hpp"
#include "util/error.hpp"

namespace kestrel::proto {
namespace {

TEST(Frame, RoundTripsThroughDecoderByteByByte) {
  std::string wire = encode_frame(Type::kStdout, 7, "hello") + encode_frame(Type::kExit, 7, "");
  FrameDecoder d;
  std::vector<Frame> frames;
  for (char c : wire) {
    d.feed(std::string_view(&c, 1));
    while (auto f = d.next()) frames.push_back(*f);
  }
  ASSERT_EQ(frames.size(), 2u);
  EXPECT_EQ(frames[0].type, Type::kStdout);
  EXPECT_EQ(frames[0].stream, 7u);
  EXPECT_EQ(frames[0].payload, "hello");
  EXPECT_EQ(frames[1].type, Type::kExit);
  EXPECT_EQ(frames[1].payload, "");
  EXPECT_EQ(d.buffered(), 0u);
}

TEST(Frame, HeaderLayoutIsLittleEndian) {
  std::string wire = encode_frame(Type::kSignal, 0x01020304, "ab");
  ASSERT_EQ(wire.size(), kHeaderSize + 2);
  EXPECT_EQ(wire.substr(0, 4), std::string("\x02\x00\x00\x00", 4));
  EXPECT_EQ(wire.substr(4, 4), std::string("\x0b\x00\x00\x00", 4));
  EXPECT_EQ(wire.substr(8, 4), std::string("\x04\x03\x02\x01", 4));
}

TEST(Frame, RejectsOversizedLength) {
  FrameDecoder d;
  d.feed(std::string("\x01\x00\x10\x00\x08\x00\x00\x00\x01\x00\x00\x00", 12));  // 1 MiB + 1
  EXPECT_THROW(d.next(), Error);
}

TEST(Frame, AcceptsMaximalPayload) {
  std::string payload(kMaxPayload, 'x');
  FrameDecoder d;
  d.feed(encode_frame(Type::kStdout, 1, payload));
  auto f = d.next();
  ASSERT_TRUE(f);
  EXPECT_EQ(f->payload.size(), kMaxPayload);
  EXPECT_THROW(encode_frame(Type::kStdout, 1, payload + "y"), Error);
}

TEST(Frame, RejectsUnknownTypeAndReservedBits) {
  FrameDecoder a;
  a.feed(std::string("\x00\x00\x00\x00\x63\x00\x00\x00\x00\x00\x00\x00", 12));
  EXPECT_THROW(a.next(), Error);
  FrameDecoder b;
  b.feed(std::string("\x00\x00\x00\x00\x01\x00\x01\x00\x00\x00\x00\x00", 12));
  EXPECT_THROW(b.next(), Error);
}

TEST(Frame, WaitsForWholePayload) {
  std::string wire = encode_frame(Type::kStdin, 3, "abcdef");
  FrameDecoder d;
  d.feed(wire.substr(0, wire.size() - 1));
  EXPECT_FALSE(d.next());
  d.feed(wire.substr(wire.size() - 1));
  auto f = d.next();
  ASSERT_TRUE(f);
  EXPECT_EQ(f->payload, "abcdef");
}

TEST(Messages, ExecRoundTrip) {
  Exec e;
  e.argv = {"/bin/sh", "-c", std::string("a\0b", 3)};
  e.env = {"A=1", "B="};
  e.cwd = "/tmp/x";
  e.flags = kExecStdin | kExecPty;
  e.rows = 24;
  e.cols = 80;
  Exec d = Exec::decode(e.encode());
  EXPECT_EQ(d.argv, e.argv);
  EXPECT_EQ(d.env, e.env);
  EXPECT_EQ(d.cwd, e.cwd);
  EXPECT_EQ(d.flags, e.flags);
  EXPECT_EQ(d.rows, 24u);
  EXPECT_EQ(d.cols, 80u);
}

TEST(Messages, ExecRejectsEmptyArgvAndTrailingBytes) {
  Exec e;
  EXPECT_THROW(Exec::decode(e.encode()), Error);
  e.argv = {"x"};
  EXPECT_THROW(Exec::decode(e.encode() + "z"), Error);
  std::string truncated = e.encode();
  truncated.pop_back();
  EXPECT_THROW(Exec::decode(truncated), Error);
}

TEST(Messages, SetupRoundTrip) {
  SetupRequest s;
  s.hostname = "vm-1";
  s.realtime_ns = 1234567890123456789;
  s.entropy = std::string(32, '\x7f');
  s.mounts = {{"root", "", MountKind::kRootOverlay}, {"bay", "/tmp/k/bay", MountKind::kReadWrite}};
  SetupRequest d = SetupRequest::decode(s.encode());
  EXPECT_EQ(d.hostname, "vm-1");
  EXPECT_EQ(d.realtime_ns, s.realtime_ns);
  EXPECT_EQ(d.entropy, s.entropy);
  ASSERT_EQ(d.mounts.size(), 2u);
  EXPECT_EQ(d.mounts[1].target, "/tmp/k/bay");
  EXPECT_EQ(d.mounts[1].kind, MountKind::kReadWrite);
}

TEST(Messages, ExitStatusShellConvention) {
  ExitStatus sig{ExitStatus::Kind::kSignaled, 11};
  EXPECT_EQ(ExitStatus::decode(sig.encode()).shell_status(), 139);
  ExitStatus code{ExitStatus::Kind::kExited, 7};
  EXPECT_EQ(ExitStatus::decode(code.encode()).shell_status(), 7);
  EXPECT_THROW(ExitStatus::decode(std::string("\x02\x00\x00\x00\x00", 5)), Error);
}

TEST(Wire, HugeListCountIsRejectedBeforeAllocation) {
  std::string payload = Writer().u32(0xffffffffu).take();
  Reader r(payload);
  EXPECT_THROW(r.list(), Error);
}

TEST(Messages, HelloRoundTrip) {
  Hello h{kVersion, 42, {"exec", "pty"}, "kernel=6.1\nsetup=0\n"};
  Hello d = Hello::decode(h.encode());
  EXPECT_EQ(d.version, kVersion);
  EXPECT_EQ(d.nonce, 42u);
  EXPECT_EQ(d.capabilities, h.capabilities);
  EXPECT_EQ(d.info, h.info);
}

}  // namespace
}  // namespace kestrel::proto
