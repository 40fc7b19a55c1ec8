#include <gtest/gtest.h>

#include "proto/exec_frames.hpp"
#include "proto/frame.hpp"
#include "proto/messages.hpp"
#include "proto/wire.hpp"
#include "test_support.hpp"
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
  EXPECT_TRUE(d.limits.empty());
}

TEST(Messages, SetupCarriesResourceLimits) {
  SetupRequest s;
  s.limits = {{7, 1024, 524288}, {8, 8 << 20, ~uint64_t{0}}};
  EXPECT_EQ(SetupRequest::decode(s.encode()).limits, s.limits);
  auto with = [](uint32_t count, uint32_t resource) {
    Writer w;
    w.bytes("").i64(0).bytes("").u32(0).u32(count);
    for (uint32_t i = 0; i < count && i < 20; ++i) w.u32(resource).u64(1).u64(2);
    w.bytes("").bytes("").bytes("");
    return w.take();
  };
  EXPECT_NO_THROW(SetupRequest::decode(with(16, 15)));
  EXPECT_THROW(SetupRequest::decode(with(17, 7)), Error);  // too many
  EXPECT_THROW(SetupRequest::decode(with(1, 16)), Error);  // no such resource
  EXPECT_THROW(SetupRequest::decode(with(0xffffffff, 7)), Error);
}

TEST(Messages, SetupCarriesHostsAndTimeZone) {
  SetupRequest s;
  s.hosts = "127.0.0.1 localhost\n";
  s.localtime = std::string("TZif2\0\0\xff", 8);
  s.timezone = "America/New_York";
  SetupRequest d = SetupRequest::decode(s.encode());
  EXPECT_EQ(d.hosts, s.hosts);
  EXPECT_EQ(d.localtime, s.localtime);
  EXPECT_EQ(d.timezone, s.timezone);
  auto with = [](const std::string& hosts, const std::string& localtime, const std::string& zone) {
    return Writer().bytes("").i64(0).bytes("").u32(0).u32(0).bytes(hosts).bytes(localtime).bytes(zone).take();
  };
  EXPECT_NO_THROW(SetupRequest::decode(with(std::string(kMaxSetupHosts, 'h'), std::string(kMaxLocaltime, 't'), "UTC")));
  EXPECT_THROW(SetupRequest::decode(with(std::string(kMaxSetupHosts + 1, 'h'), "", "")), Error);
  EXPECT_THROW(SetupRequest::decode(with("", std::string(kMaxLocaltime + 1, 't'), "")), Error);
  EXPECT_THROW(SetupRequest::decode(with("", "", std::string(kMaxTimezoneName + 1, 'z'))), Error);
  EXPECT_THROW(SetupRequest::decode(with("", "", "Etc/UTC\nnameserver 1.2.3.4")), Error);
  EXPECT_THROW(SetupRequest::decode(with("", "", std::string("Etc/UTC\0x", 9))), Error);
  // A version-5 SETUP (no such fields) is malformed, never half read.
  EXPECT_THROW(SetupRequest::decode(Writer().bytes("").i64(0).bytes("").u32(0).u32(0).take()), Error);
}

TEST(Messages, ExitStatusShellConvention) {
  ExitStatus sig{ExitStatus::Kind::kSignaled, 11};
  EXPECT_EQ(ExitStatus::decode(sig.encode()).shell_status(), 139);
  ExitStatus code{ExitStatus::Kind::kExited, 7};
  EXPECT_EQ(ExitStatus::decode(code.encode()).shell_status(), 7);
  EXPECT_THROW(ExitStatus::decode(std::string("\x02\x00\x00\x00\x00", 5)), Error);
}

TEST(Messages, ExitStatusCarriesTheOomKills) {
  ExitStatus killed{ExitStatus::Kind::kSignaled, 9, "process 312 (alloc, 402 MiB resident)"};
  ExitStatus back = ExitStatus::decode(killed.encode());
  EXPECT_EQ(back.oom, killed.oom);
  EXPECT_EQ(back.shell_status(), 137);
  EXPECT_EQ(ExitStatus::decode(ExitStatus{}.encode()).oom, "");
  // The sender cuts it at the bound; a receiver refuses more.
  ExitStatus long_one{ExitStatus::Kind::kExited, 0, std::string(5000, 'x')};
  EXPECT_EQ(ExitStatus::decode(long_one.encode()).oom.size(), kMaxOomText);
  std::string wire = ExitStatus{}.encode();
  wire.resize(5);
  wire += std::string("\x01\x04\x00\x00", 4) + std::string(1025, 'x');  // u32 1025 little-endian
  EXPECT_THROW(ExitStatus::decode(wire), Error);
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

// Large EXEC (docs/protocol.md): the frames encode_exec() makes, sent
// through the frame decoder into an assembler, as between host and agent.
ExecAssembler::Request send_through(const Exec& e, size_t* frame_count = nullptr) {
  std::string wire;
  auto frames = encode_exec(e);
  if (frame_count) *frame_count = frames.size();
  for (const auto& f : frames) wire += encode_frame(f.type, 5, f.payload);
  FrameDecoder d;
  d.feed(wire);
  ExecAssembler a;
  std::optional<ExecAssembler::Request> out;
  while (auto f = d.next()) {
    EXPECT_LE(f->payload.size(), kMaxPayload);
    EXPECT_FALSE(out) << "frames after the request was complete";
    if (a.offer(*f) == ExecAssembler::Offer::kReady) out = a.take();
  }
  EXPECT_EQ(d.buffered(), 0u);
  EXPECT_FALSE(a.busy());
  if (!out) throw Error("the request never completed");
  return std::move(*out);
}

Exec small_exec() {
  Exec e;
  e.argv = {"/bin/true"};
  e.env = {"PATH=/bin"};
  e.cwd = "/";
  e.flags = kExecStdin;
  return e;
}

TEST(ExecFrames, SmallRequestIsOneExecFrameAsBefore) {
  Exec e = small_exec();
  auto frames = encode_exec(e);
  ASSERT_EQ(frames.size(), 1u);
  EXPECT_EQ(frames[0].type, Type::kExec);
  EXPECT_EQ(frames[0].payload, e.encode());
}

TEST(ExecFrames, TwoHundredThousandArgumentsRoundTrip) {
  Exec e = small_exec();
  e.argv = {"/bin/sh", "-c", "echo $#", "x"};
  for (int i = 1; i <= 200000; ++i) e.argv.push_back(std::to_string(i));
  size_t frames = 0;
  ExecAssembler::Request r = send_through(e, &frames);
  EXPECT_GT(frames, 1u);
  EXPECT_EQ(r.stream, 5u);
  EXPECT_EQ(r.error, "");
  EXPECT_EQ(r.exec.argv, e.argv);
  EXPECT_EQ(r.exec.env, e.env);
  EXPECT_EQ(r.exec.cwd, "/");
  EXPECT_EQ(r.exec.flags, kExecStdin);  // MORE is the protocol's, not the request's
}

TEST(ExecFrames, OneAndAHalfMebibytesOfEnvironmentRoundTrip) {
  Exec e = small_exec();
  // Entries of every size up to 128 KiB (one string's limit in execve).
  size_t total = 0;
  for (size_t i = 0; total < 3 * (1u << 19); ++i) {
    std::string entry = "V" + std::to_string(i) + "=" + std::string((i * 7919) % (128 * 1024 - 16), 'a' + i % 26);
    total += entry.size();
    e.env.push_back(std::move(entry));
  }
  size_t frames = 0;
  ExecAssembler::Request r = send_through(e, &frames);
  EXPECT_GE(frames, 2u);
  EXPECT_EQ(r.exec.argv, e.argv);
  EXPECT_EQ(r.exec.env, e.env);
}

TEST(ExecFrames, ManyEmptyItemsRespectTheListLimitPerFrame) {
  Exec e = small_exec();
  e.argv.resize(150000);  // empty strings: the item count, not the bytes, splits
  e.argv[0] = "/bin/true";
  e.env.assign(70000, "");
  auto frames = encode_exec(e);
  EXPECT_GE(frames.size(), 3u);
  ExecAssembler::Request r = send_through(e);
  EXPECT_EQ(r.exec.argv, e.argv);
  EXPECT_EQ(r.exec.env, e.env);
}

TEST(ExecFrames, SenderRefusesWhatExceedsTheBounds) {
  Exec e = small_exec();
  e.env.assign(200, std::string(100 * 1024, 'e'));  // 20 MiB > 16 MiB
  EXPECT_THROW(encode_exec(e), Error);
  e.env.assign(kMaxExecItems, "");  // with argv[0]: one item too many
  EXPECT_THROW(encode_exec(e), Error);
  e.env = {std::string(kMaxPayload, 'x')};  // one item longer than a frame
  EXPECT_THROW(encode_exec(e), Error);
  e.env.clear();
  e.argv.clear();
  EXPECT_THROW(encode_exec(e), Error);
}

Frame exec_frame(uint32_t stream, std::vector<std::string> argv, uint32_t flags) {
  Exec e = small_exec();
  e.argv = std::move(argv);
  e.flags = flags;
  return {Type::kExec, stream, e.encode()};
}

Frame more_frame(uint32_t stream, bool last, std::vector<std::string> argv, std::vector<std::string> env = {}) {
  return {Type::kExecMore, stream, ExecMore{last, std::move(argv), std::move(env)}.encode()};
}

TEST(ExecAssembler, RefusesOversizeTotalsButReadsToTheEnd) {
  ExecAssembler a;
  ASSERT_EQ(a.offer(exec_frame(3, {"/bin/true"}, kExecMoreFollows)), ExecAssembler::Offer::kPending);
  // 18 frames of almost 1 MiB each: over 16 MiB of strings.
  std::vector<std::string> big(15, std::string(64 * 1024, 'b'));
  for (int i = 0; i < 17; ++i) ASSERT_EQ(a.offer(more_frame(3, false, big)), ExecAssembler::Offer::kPending);
  ASSERT_EQ(a.offer(more_frame(3, true, big)), ExecAssembler::Offer::kReady);
  ExecAssembler::Request r = a.take();
  EXPECT_EQ(r.stream, 3u);
  EXPECT_NE(r.error.find("bounds"), std::string::npos) << r.error;
  EXPECT_LE(r.exec.argv.size(), 1u);  // nothing kept after the refusal
  EXPECT_FALSE(a.busy());
}

TEST(ExecAssembler, RefusesTooManyItems) {
  ExecAssembler a;
  ASSERT_EQ(a.offer(exec_frame(3, {"/bin/true"}, kExecMoreFollows)), ExecAssembler::Offer::kPending);
  std::vector<std::string> empties(kMaxListItems);
  ExecAssembler::Offer last = ExecAssembler::Offer::kPending;
  for (size_t n = 1; n <= kMaxExecItems; n += 2 * kMaxListItems)
    last = a.offer(more_frame(3, n + 2 * kMaxListItems > kMaxExecItems, empties, empties));
  ASSERT_EQ(last, ExecAssembler::Offer::kReady);
  EXPECT_NE(a.take().error, "");
}

TEST(ExecAssembler, MalformedSequencesAreProtocolErrors) {
  {  // EXEC_MORE first: out of order
    ExecAssembler a;
    EXPECT_THROW(a.offer(more_frame(3, true, {"a"})), Error);
  }
  {  // after the last one
    ExecAssembler a;
    a.offer(exec_frame(3, {"/bin/true"}, kExecMoreFollows));
    ASSERT_EQ(a.offer(more_frame(3, true, {"a"})), ExecAssembler::Offer::kReady);
    a.take();
    EXPECT_THROW(a.offer(more_frame(3, true, {"b"})), Error);
  }
  {  // missing end: a second EXEC, or any other frame, before the last EXEC_MORE
    ExecAssembler a;
    a.offer(exec_frame(3, {"/bin/true"}, kExecMoreFollows));
    EXPECT_EQ(a.offer(more_frame(3, false, {"a"})), ExecAssembler::Offer::kPending);
    EXPECT_TRUE(a.busy());
    EXPECT_THROW(a.offer(exec_frame(4, {"/bin/true"}, 0)), Error);
    EXPECT_THROW(a.offer(Frame{Type::kStdin, 3, "x"}), Error);
    EXPECT_THROW(a.offer(Frame{Type::kPing, 9, "x"}), Error);
    // A new host session's HELLO is the caller's to handle (it resets us).
    EXPECT_EQ(a.offer(Frame{Type::kHello, 0, Hello{kVersion, 1, {}, ""}.encode()}), ExecAssembler::Offer::kNotMine);
    a.reset();
    EXPECT_FALSE(a.busy());
    EXPECT_EQ(a.offer(exec_frame(4, {"/bin/true"}, 0)), ExecAssembler::Offer::kReady);
    EXPECT_EQ(a.take().exec.argv[0], "/bin/true");
  }
  {  // on another stream
    ExecAssembler a;
    a.offer(exec_frame(3, {"/bin/true"}, kExecMoreFollows));
    EXPECT_THROW(a.offer(more_frame(4, true, {"a"})), Error);
  }
  {  // malformed EXEC_MORE: no items, last of 2, too many items in one list, trailing bytes
    std::vector<std::string> bad = {ExecMore{true, {}, {}}.encode(), Writer().u8(2).list({"a"}).list({}).take(),
                                    Writer().u8(1).u32(kMaxListItems + 1).take() + std::string(4 * 70000, '\0'),
                                    ExecMore{true, {"a"}, {}}.encode() + "z"};
    for (const auto& payload : bad) {
      ExecAssembler a;
      a.offer(exec_frame(3, {"/bin/true"}, kExecMoreFollows));
      EXPECT_THROW(a.offer(Frame{Type::kExecMore, 3, payload}), Error);
    }
  }
  {  // EXEC on stream 0
    ExecAssembler a;
    EXPECT_THROW(a.offer(exec_frame(0, {"/bin/true"}, 0)), Error);
  }
}

TEST(ExecAssembler, MalformedExecFailsTheRequestOnly) {
  ExecAssembler a;
  ASSERT_EQ(a.offer(Frame{Type::kExec, 3, "junk"}), ExecAssembler::Offer::kReady);
  ExecAssembler::Request r = a.take();
  EXPECT_EQ(r.stream, 3u);
  EXPECT_NE(r.error, "");
  EXPECT_EQ(a.offer(Frame{Type::kPing, 4, ""}), ExecAssembler::Offer::kNotMine);
}

TEST(Frame, VersionFourKnowsNetwork) {
  EXPECT_EQ(kVersion, 6u);
  EXPECT_TRUE(is_known_type(static_cast<uint16_t>(Type::kExecMore)));
  EXPECT_STREQ(type_name(Type::kExecMore), "EXEC_MORE");
  EXPECT_TRUE(is_known_type(16));
  EXPECT_STREQ(type_name(Type::kService), "SERVICE");
  EXPECT_TRUE(is_known_type(17));
  EXPECT_EQ(static_cast<uint16_t>(Type::kNetwork), 17);
  EXPECT_STREQ(type_name(Type::kNetwork), "NETWORK");
  EXPECT_FALSE(is_known_type(18));
}

TEST(Messages, SetupWithADiskRootRoundTrips) {
  SetupRequest s;
  s.mounts = {{"/dev/vda", "ext4", MountKind::kDiskRoot}, {"bay", "/tmp/k/bay", MountKind::kReadWrite}};
  SetupRequest d = SetupRequest::decode(s.encode());
  ASSERT_EQ(d.mounts.size(), 2u);
  EXPECT_EQ(d.mounts[0].tag, "/dev/vda");
  EXPECT_EQ(d.mounts[0].target, "ext4");
  EXPECT_EQ(d.mounts[0].kind, MountKind::kDiskRoot);
  EXPECT_TRUE(d.mounts[0].is_root());
  EXPECT_FALSE(d.mounts[1].is_root());
  EXPECT_TRUE((Mount{"root", "", MountKind::kRootOverlay}.is_root()));
  // Kind 4 is nobody's.
  std::string bad = Writer().bytes("").i64(0).bytes("").u32(1).bytes("x").bytes("/y").u32(4).u32(0).take();
  EXPECT_THROW(SetupRequest::decode(bad), Error);
}

ServiceRequest postgres() { return {"postgresql", "pg_ctlcluster 15 main start", "tcp:5432", 60000}; }

TEST(Messages, ServiceRoundTrip) {
  ServiceRequest s = postgres();
  std::string wire = s.encode();
  EXPECT_EQ(wire,
            Writer().bytes("postgresql").bytes("pg_ctlcluster 15 main start").bytes("tcp:5432").u32(60000).take());
  ServiceRequest d = ServiceRequest::decode(wire);
  EXPECT_EQ(d.name, s.name);
  EXPECT_EQ(d.command, s.command);
  EXPECT_EQ(d.ready, s.ready);
  EXPECT_EQ(d.timeout_ms, 60000u);
  EXPECT_NO_THROW(d.validate());
}

TEST(Messages, MalformedServiceIsRejected) {
  std::string good = postgres().encode();
  EXPECT_THROW(ServiceRequest::decode(good + "z"), Error);
  EXPECT_THROW(ServiceRequest::decode(good.substr(0, good.size() - 1)), Error);
  EXPECT_THROW(ServiceRequest::decode(""), Error);
  // A length that points past the end.
  EXPECT_THROW(ServiceRequest::decode(Writer().u32(1000).take() + "pg"), Error);
  // Over the bounds: name 65 bytes, command or ready over 64 KiB.
  auto with = [](std::string name, std::string command, std::string ready) {
    return Writer().bytes(name).bytes(command).bytes(ready).u32(1).take();
  };
  EXPECT_NO_THROW(ServiceRequest::decode(with(std::string(64, 'a'), "x", "")));
  EXPECT_THROW(ServiceRequest::decode(with(std::string(65, 'a'), "x", "")), Error);
  EXPECT_NO_THROW(ServiceRequest::decode(with("a", std::string(kMaxServiceText, 'x'), "")));
  EXPECT_THROW(ServiceRequest::decode(with("a", std::string(kMaxServiceText + 1, 'x'), "")), Error);
  EXPECT_THROW(ServiceRequest::decode(with("a", "x", "command:" + std::string(kMaxServiceText, 'x'))), Error);
}

TEST(Messages, ServiceValidation) {
  auto problem = [](ServiceRequest s) { return test::error_message([&] { s.validate(); }); };
  ServiceRequest s = postgres();
  for (const std::string& name : std::vector<std::string>{"a", "pg-15", "x.y_z", "0", std::string(63, 'n')}) {
    s.name = name;
    EXPECT_EQ(problem(s), "") << name;
  }
  for (const std::string& name : std::vector<std::string>{"", "Postgres", "-x", ".x", "_x", "a/b", "a b",
                                                          std::string("a\0b", 3), std::string(64, 'n')}) {
    s.name = name;
    EXPECT_NE(problem(s).find("invalid service name"), std::string::npos) << name;
  }
  s = postgres();
  s.command = "";
  EXPECT_NE(problem(s).find("has no command"), std::string::npos);
  s.command = std::string("a\0b", 3);
  EXPECT_NE(problem(s).find("NUL"), std::string::npos);
  s = postgres();
  s.timeout_ms = 0;
  EXPECT_NE(problem(s).find("timeout of 0"), std::string::npos);
  s = postgres();
  s.ready = "http:80";
  EXPECT_EQ(problem(s),
            "service postgresql: invalid readiness 'http:80': expected nothing, tcp:PORT, unix:/PATH or command:SHELL");
}

TEST(Messages, ReadinessForms) {
  EXPECT_EQ(parse_readiness("").kind, Readiness::Kind::kExited);
  Readiness tcp = parse_readiness("tcp:5432");
  EXPECT_EQ(tcp.kind, Readiness::Kind::kTcp);
  EXPECT_EQ(tcp.port, 5432);
  EXPECT_EQ(parse_readiness("tcp:65535").port, 65535);
  Readiness unix_socket = parse_readiness("unix:/run/postgresql/.s.PGSQL.5432");
  EXPECT_EQ(unix_socket.kind, Readiness::Kind::kUnix);
  EXPECT_EQ(unix_socket.text, "/run/postgresql/.s.PGSQL.5432");
  Readiness command = parse_readiness("command:pg_isready -q");
  EXPECT_EQ(command.kind, Readiness::Kind::kCommand);
  EXPECT_EQ(command.text, "pg_isready -q");
  for (const char* bad : {"tcp:", "tcp:0", "tcp:65536", "tcp:-1", "tcp:12a", "tcp:000001", "tcp: 80",
                          "unix:", "unix:relative", "command:", "TCP:80", "ready"}) {
    EXPECT_THROW(parse_readiness(bad), Error) << bad;
  }
  EXPECT_NO_THROW(parse_readiness("unix:/" + std::string(106, 's')));
  EXPECT_THROW(parse_readiness("unix:/" + std::string(107, 's')), Error);
  EXPECT_THROW(parse_readiness(std::string("unix:/a\0b", 9)), Error);
}

// ---- NETWORK ---------------------------------------------------------------

constexpr uint32_t ip(uint32_t a, uint32_t b, uint32_t c, uint32_t d) { return a << 24 | b << 16 | c << 8 | d; }

// A router between two links, with a default route through the first.
NetworkRequest router() {
  NetworkRequest n;
  n.nics = {{"52:54:00:0a:01:01", ip(10, 1, 0, 1), 24}, {"52:54:00:0A:02:01", ip(10, 2, 0, 1), 30}};
  n.routes = {{ip(10, 3, 0, 0), 16, ip(10, 2, 0, 2)}, {0, 0, ip(10, 1, 0, 254)}};
  n.forward = true;
  n.hosts = "127.0.0.1 localhost\n10.1.0.1 router\n";
  n.resolv_conf = "nameserver 10.0.2.3\n";
  return n;
}

std::string problem(const NetworkRequest& n) {
  return test::error_message([&] { n.validate(); });
}

TEST(Messages, NetworkWireLayout) {
  NetworkRequest n;
  n.nics = {{"52:54:00:0a:01:02", ip(10, 1, 2, 3), 24}};
  n.routes = {{ip(10, 9, 0, 0), 16, ip(10, 1, 2, 1)}};
  n.forward = true;
  n.hosts = "h";
  // Addresses are u32 values, first octet most significant, little-endian on the wire.
  std::string want = Writer()
                         .u32(1)
                         .bytes("52:54:00:0a:01:02")
                         .u32(0x0a010203)
                         .u8(24)
                         .u32(1)
                         .u32(0x0a090000)
                         .u8(16)
                         .u32(0x0a010201)
                         .u8(1)
                         .bytes("h")
                         .bytes("")
                         .take();
  EXPECT_EQ(n.encode(), want);
  EXPECT_EQ(n.encode().substr(4 + 4 + 17, 4), std::string("\x03\x02\x01\x0a", 4));
}

TEST(Messages, NetworkRoundTrip) {
  NetworkRequest n = router();
  NetworkRequest d = NetworkRequest::decode(n.encode());
  ASSERT_EQ(d.nics.size(), 2u);
  EXPECT_EQ(d.nics[1].mac, "52:54:00:0A:02:01");
  EXPECT_EQ(d.nics[1].address, ip(10, 2, 0, 1));
  EXPECT_EQ(d.nics[1].prefix, 30);
  ASSERT_EQ(d.routes.size(), 2u);
  EXPECT_EQ(d.routes[0].destination, ip(10, 3, 0, 0));
  EXPECT_EQ(d.routes[0].prefix, 16);
  EXPECT_EQ(d.routes[0].gateway, ip(10, 2, 0, 2));
  EXPECT_EQ(d.routes[1].prefix, 0);
  EXPECT_TRUE(d.forward);
  EXPECT_EQ(d.hosts, n.hosts);
  EXPECT_EQ(d.resolv_conf, n.resolv_conf);
  EXPECT_EQ(d.encode(), n.encode());
  EXPECT_EQ(problem(d), "");
  // The empty request is valid: nothing to configure but lo and forwarding.
  NetworkRequest empty = NetworkRequest::decode(NetworkRequest{}.encode());
  EXPECT_TRUE(empty.nics.empty() && empty.routes.empty() && !empty.forward);
  EXPECT_EQ(problem(empty), "");
}

TEST(Messages, MalformedNetworkIsRejected) {
  std::string good = router().encode();
  EXPECT_THROW(NetworkRequest::decode(good + "z"), Error);
  EXPECT_THROW(NetworkRequest::decode(good.substr(0, good.size() - 1)), Error);
  EXPECT_THROW(NetworkRequest::decode(""), Error);
  auto nics = [](size_t count, std::string mac = "52:54:00:00:00:01") {
    Writer w;
    w.u32(static_cast<uint32_t>(count));
    for (size_t i = 0; i < count; ++i) w.bytes(mac).u32(ip(10, 0, 0, 1)).u8(24);
    return w.u32(0).u8(0).bytes("").bytes("").take();
  };
  EXPECT_NO_THROW(NetworkRequest::decode(nics(kMaxNics)));
  EXPECT_THROW(NetworkRequest::decode(nics(kMaxNics + 1)), Error);
  EXPECT_THROW(NetworkRequest::decode(nics(1, "52:54:00:00:00:01:")), Error);  // 18 bytes
  auto routes = [](size_t count) {
    Writer w;
    w.u32(0).u32(static_cast<uint32_t>(count));
    for (size_t i = 0; i < count; ++i) w.u32(0).u8(0).u32(0);
    return w.u8(0).bytes("").bytes("").take();
  };
  EXPECT_NO_THROW(NetworkRequest::decode(routes(kMaxRoutes)));
  EXPECT_THROW(NetworkRequest::decode(routes(kMaxRoutes + 1)), Error);
  auto tail = [](uint8_t forward, std::string hosts, std::string resolv) {
    return Writer().u32(0).u32(0).u8(forward).bytes(hosts).bytes(resolv).take();
  };
  EXPECT_NO_THROW(NetworkRequest::decode(tail(1, "", "")));
  EXPECT_THROW(NetworkRequest::decode(tail(2, "", "")), Error);
  EXPECT_NO_THROW(
      NetworkRequest::decode(tail(0, std::string(kMaxNetworkText, 'h'), std::string(kMaxNetworkText, 'r'))));
  EXPECT_THROW(NetworkRequest::decode(tail(0, std::string(kMaxNetworkText + 1, 'h'), "")), Error);
  EXPECT_THROW(NetworkRequest::decode(tail(0, "", std::string(kMaxNetworkText + 1, 'r'))), Error);
  // A count that cannot fit is refused before anything is allocated.
  EXPECT_THROW(NetworkRequest::decode(Writer().u32(0xffffffff).take()), Error);
}

TEST(Messages, NetworkValidation) {
  auto with_nic = [](std::string mac, uint32_t address, int prefix) {
    NetworkRequest n;
    n.nics = {{std::move(mac), address, prefix}};
    return n;
  };
  EXPECT_EQ(problem(with_nic("52:54:00:ab:CD:ef", ip(10, 0, 0, 1), 8)), "");
  EXPECT_EQ(problem(with_nic("02:00:00:00:00:01", ip(192, 168, 7, 2), 30)), "");
  for (const char* mac : {"", "52:54:00:ab:cd", "52:54:00:ab:cd:ef:01", "52-54-00-ab-cd-ef", "52:54:00:ab:cd:eg",
                          "5254.00ab.cdef", "52:54:00:ab:cd:e", " 52:54:00:ab:cd:e"}) {
    EXPECT_NE(problem(with_nic(mac, ip(10, 0, 0, 1), 24)).find("NIC 0: invalid MAC address"), std::string::npos) << mac;
  }
  EXPECT_EQ(problem(with_nic("01:00:5e:00:00:01", ip(10, 0, 0, 1), 24)),
            "invalid NETWORK: NIC 0: MAC address 01:00:5e:00:00:01 is a multicast address (the lowest bit of its "
            "first byte is set)");
  EXPECT_NE(problem(with_nic("00:00:00:00:00:00", ip(10, 0, 0, 1), 24)).find("all zero"), std::string::npos);
  for (int prefix : {-1, 0, 7, 31, 32, 200}) {
    EXPECT_EQ(problem(with_nic("52:54:00:00:00:01", ip(10, 0, 0, 1), prefix)),
              fmt::format("invalid NETWORK: NIC 0: prefix length {} is out of range (8 to 30)", prefix));
  }
  EXPECT_EQ(problem(with_nic("52:54:00:00:00:01", ip(10, 1, 0, 0), 24)),
            "invalid NETWORK: NIC 0: 10.1.0.0/24 is the network address of its subnet");
  EXPECT_EQ(problem(with_nic("52:54:00:00:00:01", ip(10, 1, 0, 3), 30)),
            "invalid NETWORK: NIC 0: 10.1.0.3/30 is the broadcast address of its subnet");

  NetworkRequest n = router();
  n.nics[1].mac = "52:54:00:0a:01:01";
  EXPECT_EQ(problem(n), "invalid NETWORK: NIC 1 has the MAC address of NIC 0 (52:54:00:0a:01:01)");
  n = router();
  n.nics[1].mac = "52:54:00:0A:01:01";  // the same, in capitals
  EXPECT_NE(problem(n).find("has the MAC address of NIC 0"), std::string::npos);
  n = router();
  n.nics[1].address = n.nics[0].address;
  n.nics[1].prefix = 24;
  EXPECT_EQ(problem(n), "invalid NETWORK: NIC 1 has the address of NIC 0 (10.1.0.1)");

  n = router();
  n.routes[0].prefix = 33;
  EXPECT_EQ(problem(n), "invalid NETWORK: route 0: prefix length 33 is out of range (0 to 32)");
  n = router();
  n.routes[0].destination = ip(10, 3, 2, 1);
  EXPECT_EQ(problem(n),
            "invalid NETWORK: route 0: 10.3.2.1/16 has address bits set past its prefix (the subnet is 10.3.0.0/16)");
  n = router();
  n.routes[0] = {ip(10, 3, 2, 1), 32, ip(10, 2, 0, 2)};  // a host route
  EXPECT_EQ(problem(n), "");
  n.routes[1].gateway = ip(10, 9, 0, 1);
  EXPECT_EQ(problem(n),
            "invalid NETWORK: route 1: the gateway 10.9.0.1 of 0.0.0.0/0 is in the subnet of none of the NICs");
  n = router();
  n.nics.clear();
  EXPECT_NE(problem(n).find("route 0: the gateway 10.2.0.2 of 10.3.0.0/16 is in the subnet of none"),
            std::string::npos);

  n = router();
  n.hosts = std::string("a\0b", 3);
  EXPECT_EQ(problem(n), "invalid NETWORK: hosts contains a NUL byte");
  n = router();
  n.resolv_conf = std::string(kMaxNetworkText + 1, 'r');
  EXPECT_EQ(problem(n), "invalid NETWORK: resolv_conf is longer than 65536 bytes");
  n = router();
  n.nics.resize(kMaxNics + 1, n.nics[0]);
  EXPECT_EQ(problem(n), "invalid NETWORK: 17 NICs (at most 16)");
}

TEST(Messages, NetworkPrefixOutOfRangeStaysInvalidOnTheWire) {
  NetworkRequest n = router();
  n.nics[0].prefix = 300;
  n.routes[0].prefix = -4;
  NetworkRequest d = NetworkRequest::decode(n.encode());
  EXPECT_EQ(d.nics[0].prefix, 255);
  EXPECT_EQ(d.routes[0].prefix, 0);
  EXPECT_NE(problem(d), "");
}

TEST(Messages, AddressHelpers) {
  EXPECT_EQ(format_ipv4(ip(10, 1, 2, 3)), "10.1.2.3");
  EXPECT_EQ(format_ipv4(0), "0.0.0.0");
  EXPECT_EQ(format_ipv4(0xffffffff), "255.255.255.255");
  EXPECT_EQ(prefix_netmask(0), 0u);
  EXPECT_EQ(prefix_netmask(8), 0xff000000u);
  EXPECT_EQ(prefix_netmask(24), 0xffffff00u);
  EXPECT_EQ(prefix_netmask(30), 0xfffffffcu);
  EXPECT_EQ(prefix_netmask(32), 0xffffffffu);
  EXPECT_EQ(parse_mac("52:54:00:Ab:cD:ef"), (MacAddress{0x52, 0x54, 0x00, 0xab, 0xcd, 0xef}));
  EXPECT_THROW(parse_mac("52:54:00:ab:cd:ef "), Error);
}

}  // namespace
}  // namespace kestrel::proto
