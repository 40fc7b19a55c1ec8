#include "proto/connection.hpp"

#include <unistd.h>

#include <cerrno>

#include "util/error.hpp"
#include "util/io.hpp"

namespace kestrel::proto {

void Connection::send(Type type, uint32_t stream, std::string_view payload) {
  out_ += encode_frame(type, stream, payload);
  flush();
}

void Connection::send_data(Type type, uint32_t stream, std::string_view data) {
  do {
    std::string_view chunk = data.substr(0, kChunk);
    out_ += encode_frame(type, stream, chunk);
    data.remove_prefix(chunk.size());
  } while (!data.empty());
  flush();
}

bool Connection::flush() {
  if (broken_) return false;
  while (out_offset_ < out_.size()) {
    ssize_t n = ::write(fd_, out_.data() + out_offset_, out_.size() - out_offset_);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN) break;
      broken_ = true;
      return false;
    }
    out_offset_ += static_cast<size_t>(n);
  }
  if (out_offset_ == out_.size()) {
    out_.clear();
    out_offset_ = 0;
  } else if (out_offset_ > (1u << 20)) {
    out_.erase(0, out_offset_);
    out_offset_ = 0;
  }
  return true;
}

Connection::ReadResult Connection::on_readable() {
  char buf[65536];
  ssize_t n = read_some(fd_, buf);
  if (n < 0) {
    if (errno == EAGAIN) return ReadResult::kWouldBlock;
    if (errno == ECONNRESET || errno == EPIPE) return ReadResult::kEof;
    fail_errno("cannot read from the agent channel");
  }
  if (n == 0) return ReadResult::kEof;
  decoder_.feed(std::string_view(buf, static_cast<size_t>(n)));
  return ReadResult::kOk;
}

void Connection::reset() {
  decoder_ = FrameDecoder();
  out_.clear();
  out_offset_ = 0;
  broken_ = false;
}

}  // namespace kestrel::proto
