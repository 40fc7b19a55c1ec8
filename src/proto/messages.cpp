#include "proto/messages.hpp"

#include "proto/wire.hpp"
#include "util/error.hpp"

namespace kestrel::proto {

std::string Hello::encode() const { return Writer().u32(version).u32(nonce).list(capabilities).bytes(info).take(); }

Hello Hello::decode(std::string_view payload) {
  Reader r(payload);
  Hello h;
  h.version = r.u32();
  h.nonce = r.u32();
  h.capabilities = r.list();
  h.info = r.bytes();
  r.finish();
  return h;
}

std::string SetupRequest::encode() const {
  Writer w;
  w.bytes(hostname).i64(realtime_ns).bytes(entropy).u32(static_cast<uint32_t>(mounts.size()));
  for (const auto& m : mounts) w.bytes(m.tag).bytes(m.target).u32(static_cast<uint32_t>(m.kind));
  return w.take();
}

SetupRequest SetupRequest::decode(std::string_view payload) {
  Reader r(payload);
  SetupRequest s;
  s.hostname = r.bytes();
  s.realtime_ns = r.i64();
  s.entropy = r.bytes();
  uint32_t n = r.count();
  for (uint32_t i = 0; i < n; ++i) {
    Mount m;
    m.tag = r.bytes();
    m.target = r.bytes();
    uint32_t kind = r.u32();
    if (kind > 3) fail("malformed SETUP: unknown mount kind {}", kind);
    m.kind = static_cast<MountKind>(kind);
    s.mounts.push_back(std::move(m));
  }
  r.finish();
  return s;
}

namespace {

constexpr size_t kMaxUnixPath = 107;  // sun_path, less its NUL

bool name_char(char c, bool first) {
  if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')) return true;
  return !first && (c == '.' || c == '_' || c == '-');
}

}  // namespace

Readiness parse_readiness(std::string_view ready) {
  Readiness r;
  if (ready.empty()) return r;
  auto invalid = [&](std::string_view why) -> Error {
    return Error(fmt::format("invalid readiness '{}': {}", ready.substr(0, 200), why));
  };
  if (ready.find('\0') != std::string_view::npos) throw invalid("it contains a NUL byte");
  if (ready.starts_with("tcp:")) {
    std::string_view port = ready.substr(4);
    uint32_t n = 0;
    bool digits = !port.empty() && port.size() <= 5;
    for (char c : port) {
      if (c < '0' || c > '9') digits = false;
      n = n * 10 + static_cast<uint32_t>(c - '0');
    }
    if (!digits || n < 1 || n > 65535) throw invalid("PORT must be a number from 1 to 65535");
    r.kind = Readiness::Kind::kTcp;
    r.port = static_cast<uint16_t>(n);
  } else if (ready.starts_with("unix:")) {
    std::string_view path = ready.substr(5);
    if (!path.starts_with("/")) throw invalid("the socket's path must be absolute");
    if (path.size() > kMaxUnixPath)
      throw invalid(fmt::format("the socket's path is longer than {} bytes", kMaxUnixPath));
    r.kind = Readiness::Kind::kUnix;
    r.text = std::string(path);
  } else if (ready.starts_with("command:")) {
    if (ready.size() == 8) throw invalid("the command is empty");
    r.kind = Readiness::Kind::kCommand;
    r.text = std::string(ready.substr(8));
  } else {
    throw invalid("expected nothing, tcp:PORT, unix:/PATH or command:SHELL");
  }
  return r;
}

std::string ServiceRequest::encode() const {
  return Writer().bytes(name).bytes(command).bytes(ready).u32(timeout_ms).take();
}

ServiceRequest ServiceRequest::decode(std::string_view payload) {
  Reader r(payload);
  ServiceRequest s;
  s.name = r.bytes();
  s.command = r.bytes();
  s.ready = r.bytes();
  s.timeout_ms = r.u32();
  r.finish();
  if (s.name.size() > kMaxServiceName)
    fail("malformed SERVICE: name of {} bytes (at most {})", s.name.size(), kMaxServiceName);
  if (s.command.size() > kMaxServiceText)
    fail("malformed SERVICE: command of {} bytes (at most {})", s.command.size(), kMaxServiceText);
  if (s.ready.size() > kMaxServiceText)
    fail("malformed SERVICE: ready of {} bytes (at most {})", s.ready.size(), kMaxServiceText);
  return s;
}

void ServiceRequest::validate() const {
  bool good = !name.empty() && name.size() < kMaxServiceName;
  for (size_t i = 0; good && i < name.size(); ++i) good = name_char(name[i], i == 0);
  if (!good) fail("invalid service name '{}': expected [a-z0-9][a-z0-9._-]{{0,62}}", name.substr(0, 200));
  if (command.empty()) fail("service {} has no command", name);
  if (command.size() > kMaxServiceText)
    fail("the command of service {} is longer than {} bytes", name, kMaxServiceText);
  if (command.find('\0') != std::string::npos) fail("the command of service {} contains a NUL byte", name);
  if (ready.size() > kMaxServiceText)
    fail("the readiness of service {} is longer than {} bytes", name, kMaxServiceText);
  try {
    parse_readiness(ready);
  } catch (const Error& e) {
    fail("service {}: {}", name, e.what());
  }
  if (timeout_ms == 0) fail("service {} has a timeout of 0 ms", name);
}

std::string Exec::encode() const {
  return Writer().list(argv).list(env).bytes(cwd).u32(flags).u32(rows).u32(cols).take();
}

Exec Exec::decode(std::string_view payload) {
  Reader r(payload);
  Exec e;
  e.argv = r.list();
  e.env = r.list();
  e.cwd = r.bytes();
  e.flags = r.u32();
  e.rows = r.u32();
  e.cols = r.u32();
  r.finish();
  if (e.argv.empty()) fail("malformed EXEC: empty argv");
  return e;
}

std::string ExecMore::encode() const { return Writer().u8(last ? 1 : 0).list(argv).list(env).take(); }

ExecMore ExecMore::decode(std::string_view payload) {
  Reader r(payload);
  ExecMore m;
  uint8_t last = r.u8();
  if (last > 1) fail("malformed EXEC_MORE: last is {}", last);
  m.last = last == 1;
  m.argv = r.list();
  m.env = r.list();
  r.finish();
  if (m.argv.empty() && m.env.empty()) fail("malformed EXEC_MORE: no items");
  return m;
}

std::string ExitStatus::encode() const { return Writer().u8(static_cast<uint8_t>(kind)).i32(code).take(); }

ExitStatus ExitStatus::decode(std::string_view payload) {
  Reader r(payload);
  ExitStatus s;
  uint8_t kind = r.u8();
  if (kind > 1) fail("malformed EXIT: unknown kind {}", kind);
  s.kind = static_cast<Kind>(kind);
  s.code = r.i32();
  r.finish();
  return s;
}

std::string WindowSize::encode() const { return Writer().u32(rows).u32(cols).take(); }

WindowSize WindowSize::decode(std::string_view payload) {
  Reader r(payload);
  WindowSize w;
  w.rows = r.u32();
  w.cols = r.u32();
  r.finish();
  return w;
}

std::string encode_i32(int32_t v) { return Writer().i32(v).take(); }

int32_t decode_i32(std::string_view payload) {
  Reader r(payload);
  int32_t v = r.i32();
  r.finish();
  return v;
}

std::string encode_text(std::string_view message) { return Writer().bytes(message).take(); }

std::string decode_text(std::string_view payload) {
  Reader r(payload);
  std::string s = r.bytes();
  r.finish();
  return s;
}

}  // namespace kestrel::proto
