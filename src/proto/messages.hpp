// Structured messages (docs/protocol.md, "Messages"): one struct per payload
// layout with encode() and a static decode() that throws on malformed input.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace kestrel::proto {

struct Hello {
  uint32_t version = 0;
  uint32_t nonce = 0;
  std::vector<std::string> capabilities;
  std::string info;  // key=value lines

  std::string encode() const;
  static Hello decode(std::string_view payload);
};

enum class MountKind : uint32_t { kRootOverlay = 0, kReadWrite = 1, kReadOnly = 2 };

struct Mount {
  std::string tag;
  std::string target;
  MountKind kind = MountKind::kReadOnly;
};

struct SetupRequest {
  std::string hostname;
  int64_t realtime_ns = 0;
  std::string entropy;
  std::vector<Mount> mounts;

  std::string encode() const;
  static SetupRequest decode(std::string_view payload);
};

constexpr uint32_t kExecStdin = 1u << 0;
constexpr uint32_t kExecPty = 1u << 1;
// argv and env continue in EXEC_MORE frames (docs/protocol.md, "Large EXEC").
constexpr uint32_t kExecMoreFollows = 1u << 2;

struct Exec {
  std::vector<std::string> argv;
  std::vector<std::string> env;
  std::string cwd;
  uint32_t flags = 0;
  uint32_t rows = 0;
  uint32_t cols = 0;

  std::string encode() const;
  static Exec decode(std::string_view payload);
};

// The next items of an EXEC sent with kExecMoreFollows.
struct ExecMore {
  bool last = false;
  std::vector<std::string> argv;
  std::vector<std::string> env;

  std::string encode() const;
  // Also rejects a frame without items: each one must make progress.
  static ExecMore decode(std::string_view payload);
};

struct ExitStatus {
  enum class Kind : uint8_t { kExited = 0, kSignaled = 1 };
  Kind kind = Kind::kExited;
  int32_t code = 0;

  // As a shell reports it: the code, or 128+N for death by signal N.
  int shell_status() const { return kind == Kind::kExited ? code : 128 + code; }

  std::string encode() const;
  static ExitStatus decode(std::string_view payload);
};

struct WindowSize {
  uint32_t rows = 0;
  uint32_t cols = 0;
  std::string encode() const;
  static WindowSize decode(std::string_view payload);
};

// Single-field payloads.
std::string encode_i32(int32_t v);
int32_t decode_i32(std::string_view payload);
std::string encode_text(std::string_view message);
std::string decode_text(std::string_view payload);

}  // namespace kestrel::proto
