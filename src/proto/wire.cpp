#include "proto/wire.hpp"

#include <cstring>

#include "util/error.hpp"

namespace kestrel::proto {

Writer& Writer::u8(uint8_t v) {
  out_.push_back(static_cast<char>(v));
  return *this;
}

Writer& Writer::u32(uint32_t v) {
  for (int i = 0; i < 4; ++i) out_.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
  return *this;
}

Writer& Writer::u64(uint64_t v) {
  for (int i = 0; i < 8; ++i) out_.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
  return *this;
}

Writer& Writer::bytes(std::string_view v) {
  u32(static_cast<uint32_t>(v.size()));
  out_.append(v);
  return *this;
}

Writer& Writer::list(const std::vector<std::string>& v) {
  u32(static_cast<uint32_t>(v.size()));
  for (const auto& s : v) bytes(s);
  return *this;
}

std::string_view Reader::take(size_t n) {
  if (n > in_.size()) fail("malformed message: field needs {} bytes, {} left", n, in_.size());
  std::string_view out = in_.substr(0, n);
  in_.remove_prefix(n);
  return out;
}

uint8_t Reader::u8() { return static_cast<uint8_t>(take(1)[0]); }

uint32_t Reader::u32() {
  std::string_view b = take(4);
  uint32_t v = 0;
  for (int i = 0; i < 4; ++i) v |= static_cast<uint32_t>(static_cast<uint8_t>(b[i])) << (8 * i);
  return v;
}

uint64_t Reader::u64() {
  std::string_view b = take(8);
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v |= static_cast<uint64_t>(static_cast<uint8_t>(b[i])) << (8 * i);
  return v;
}

std::string Reader::bytes() {
  uint32_t n = u32();
  return std::string(take(n));
}

uint32_t Reader::count() {
  uint32_t n = u32();
  // Every item needs at least 4 bytes (its length), so a count that cannot fit
  // is rejected before anything is allocated.
  if (n > kMaxListItems || n > in_.size() / 4)
    fail("malformed message: list of {} items with {} bytes left", n, in_.size());
  return n;
}

std::vector<std::string> Reader::list() {
  uint32_t n = count();
  std::vector<std::string> out;
  out.reserve(n);
  for (uint32_t i = 0; i < n; ++i) out.push_back(bytes());
  return out;
}

void Reader::finish() const {
  if (!in_.empty()) fail("malformed message: {} trailing bytes", in_.size());
}

}  // namespace kestrel::proto
