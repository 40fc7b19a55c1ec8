#include "proto/frame.hpp"

#include "proto/wire.hpp"
#include "util/error.hpp"

namespace kestrel::proto {

const char* type_name(Type type) {
  switch (type) {
    case Type::kHello:
      return "HELLO";
    case Type::kSetup:
      return "SETUP";
    case Type::kOk:
      return "OK";
    case Type::kError:
      return "ERROR";
    case Type::kExec:
      return "EXEC";
    case Type::kStarted:
      return "STARTED";
    case Type::kStdin:
      return "STDIN";
    case Type::kStdout:
      return "STDOUT";
    case Type::kStderr:
      return "STDERR";
    case Type::kExit:
      return "EXIT";
    case Type::kSignal:
      return "SIGNAL";
    case Type::kResize:
      return "RESIZE";
    case Type::kPing:
      return "PING";
    case Type::kPong:
      return "PONG";
    case Type::kExecMore:
      return "EXEC_MORE";
    case Type::kService:
      return "SERVICE";
    case Type::kNetwork:
      return "NETWORK";
  }
  return "?";
}

bool is_known_type(uint16_t type) { return type >= 1 && type <= 17; }

std::string encode_frame(Type type, uint32_t stream, std::string_view payload) {
  if (payload.size() > kMaxPayload)
    fail("cannot send {} frame: payload of {} bytes exceeds {}", type_name(type), payload.size(), kMaxPayload);
  Writer w;
  w.u32(static_cast<uint32_t>(payload.size()));
  w.u8(static_cast<uint8_t>(static_cast<uint16_t>(type) & 0xff));
  w.u8(static_cast<uint8_t>(static_cast<uint16_t>(type) >> 8));
  w.u8(0).u8(0);
  w.u32(stream);
  std::string out = w.take();
  out.append(payload);
  return out;
}

void FrameDecoder::feed(std::string_view bytes) {
  // Compact lazily so that a long stream of small frames stays O(n).
  if (offset_ > 0 && offset_ >= buffer_.size() / 2) {
    buffer_.erase(0, offset_);
    offset_ = 0;
  }
  buffer_.append(bytes);
}

std::optional<Frame> FrameDecoder::next() {
  std::string_view avail = std::string_view(buffer_).substr(offset_);
  if (avail.size() < kHeaderSize) return std::nullopt;
  Reader r(avail.substr(0, kHeaderSize));
  uint32_t length = r.u32();
  uint16_t type = static_cast<uint16_t>(r.u8() | (r.u8() << 8));
  uint16_t reserved = static_cast<uint16_t>(r.u8() | (r.u8() << 8));
  uint32_t stream = r.u32();
  if (length > kMaxPayload) fail("protocol error: frame of {} bytes exceeds the limit of {}", length, kMaxPayload);
  if (reserved != 0) fail("protocol error: reserved header field is {}", reserved);
  if (!is_known_type(type)) fail("protocol error: unknown frame type {}", type);
  if (avail.size() < kHeaderSize + length) return std::nullopt;
  Frame f;
  f.type = static_cast<Type>(type);
  f.stream = stream;
  f.payload.assign(avail.substr(kHeaderSize, length));
  offset_ += kHeaderSize + length;
  if (offset_ == buffer_.size()) {
    buffer_.clear();
    offset_ = 0;
  }
  return f;
}

}  // namespace kestrel::proto
