// Payload field encoding (docs/protocol.md, "Payload encoding"): little-endian
// integers, length-prefixed bytes, counted lists. Reader throws
// kestrel::Error on malformed input; it never reads out of bounds.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace kestrel::proto {

constexpr uint32_t kMaxListItems = 65536;

class Writer {
 public:
  Writer& u8(uint8_t v);
  Writer& u32(uint32_t v);
  Writer& i32(int32_t v) { return u32(static_cast<uint32_t>(v)); }
  Writer& u64(uint64_t v);
  Writer& i64(int64_t v) { return u64(static_cast<uint64_t>(v)); }
  Writer& bytes(std::string_view v);
  Writer& list(const std::vector<std::string>& v);

  const std::string& data() const { return out_; }
  std::string take() { return std::move(out_); }

 private:
  std::string out_;
};

class Reader {
 public:
  explicit Reader(std::string_view in) : in_(in) {}

  uint8_t u8();
  uint32_t u32();
  int32_t i32() { return static_cast<int32_t>(u32()); }
  uint64_t u64();
  int64_t i64() { return static_cast<int64_t>(u64()); }
  std::string bytes();
  std::vector<std::string> list();
  // Reads a list count, checked against kMaxListItems and the bytes left.
  uint32_t count();

  // Throws if bytes are left over: every payload must be consumed exactly.
  void finish() const;
  size_t left() const { return in_.size(); }

 private:
  std::string_view take(size_t n);
  std::string_view in_;
};

}  // namespace kestrel::proto
