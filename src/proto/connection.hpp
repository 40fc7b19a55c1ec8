// A frame connection over a non-blocking fd: an input decoder and an output
// queue, driven by the owner's poll loop (POLLIN -> on_readable(),
// POLLOUT while wants_write() -> flush()). Used by both host and agent.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "proto/frame.hpp"

namespace kestrel::proto {

class Connection {
 public:
  Connection() = default;
  // Does not own fd.
  explicit Connection(int fd) : fd_(fd) {}

  int fd() const { return fd_; }

  // Queues a frame and writes as much as the fd takes now.
  void send(Type type, uint32_t stream, std::string_view payload);
  // Queues bulk data, cut into kChunk-sized frames.
  void send_data(Type type, uint32_t stream, std::string_view data);

  // Writes queued bytes; returns false if the peer is gone (EPIPE etc.).
  bool flush();
  bool wants_write() const { return out_offset_ < out_.size(); }
  size_t queued() const { return out_.size() - out_offset_; }

  enum class ReadResult { kOk, kWouldBlock, kEof };
  // One read(2) into the decoder. Throws on read errors other than EAGAIN.
  ReadResult on_readable();
  // Next whole frame received so far (throws on protocol violations).
  std::optional<Frame> next() { return decoder_.next(); }

  // Forget buffered input and output (a peer reconnected).
  void reset();

 private:
  int fd_ = -1;
  FrameDecoder decoder_;
  std::string out_;
  size_t out_offset_ = 0;
  bool broken_ = false;
};

}  // namespace kestrel::proto
