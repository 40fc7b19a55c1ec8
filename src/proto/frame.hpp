// Frames (docs/protocol.md, "Frames"): a 12-byte header and a bounded payload.
#pragma once

#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <string_view>

namespace kestrel::proto {

// docs/protocol.md, "Versioning": 2 added EXEC_MORE; 3 the disk root, repeated
// SETUP and SERVICE; 4 NETWORK.
constexpr uint32_t kVersion = 6;
constexpr size_t kHeaderSize = 12;
constexpr uint32_t kMaxPayload = 1u << 20;
// Bulk data (stdout, stdin, ...) is cut into frames of at most this size.
constexpr size_t kChunk = 64 * 1024;
constexpr int kPortCount = 8;
constexpr const char* kPortPrefix = "org.kestrel.agent.";

enum class Type : uint16_t {
  kHello = 1,
  kSetup = 2,
  kOk = 3,
  kError = 4,
  kExec = 5,
  kStarted = 6,
  kStdin = 7,
  kStdout = 8,
  kStderr = 9,
  kExit = 10,
  kSignal = 11,
  kResize = 12,
  kPing = 13,
  kPong = 14,
  kExecMore = 15,
  kService = 16,
  kNetwork = 17,
};

const char* type_name(Type type);
bool is_known_type(uint16_t type);

struct Frame {
  Type type{};
  uint32_t stream = 0;
  std::string payload;
};

// Header plus payload, ready to write. Throws if the payload is too large.
std::string encode_frame(Type type, uint32_t stream, std::string_view payload);

// Incremental decoder: feed it bytes as they arrive, pop whole frames.
// Throws kestrel::Error when the stream violates the framing rules; after
// that the connection is unusable.
class FrameDecoder {
 public:
  void feed(std::string_view bytes);
  std::optional<Frame> next();
  // Bytes received but not yet part of a whole frame.
  size_t buffered() const { return buffer_.size() - offset_; }

 private:
  std::string buffer_;
  size_t offset_ = 0;
};

}  // namespace kestrel::proto
