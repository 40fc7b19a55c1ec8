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
    if (kind > 2) fail("malformed SETUP: unknown mount kind {}", kind);
    m.kind = static_cast<MountKind>(kind);
    s.mounts.push_back(std::move(m));
  }
  r.finish();
  return s;
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
