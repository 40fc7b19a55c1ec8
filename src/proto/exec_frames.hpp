// An EXEC in one frame or several (docs/protocol.md, "Large EXEC"): the
// sender's split and the receiver's assembly, with the bounds on the
// assembled request. Each frame keeps the frame and list limits; the
// request as a whole is bounded by kMaxExecItems and kMaxExecBytes.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "proto/frame.hpp"
#include "proto/messages.hpp"

namespace kestrel::proto {

// argv and env items together. Linux's 6 MiB ceiling on exec strings and
// their pointers holds fewer than 700,000 items.
constexpr size_t kMaxExecItems = 1u << 20;
// Bytes of argv and env strings, one NUL counted per item (execve(2)'s
// account, which tops out at 6 MiB).
constexpr size_t kMaxExecBytes = 16u << 20;

// The bytes kMaxExecBytes counts for these items.
size_t exec_string_bytes(const std::vector<std::string>& items);

struct OutFrame {
  Type type{};
  std::string payload;
};

// The frames that carry `request`: a single EXEC when it fits in one frame
// (the common case), else an EXEC with kExecMoreFollows and EXEC_MORE frames up to
// one with last set. Throws Error if the request exceeds the bounds, has an
// empty argv or an item too long for a frame.
std::vector<OutFrame> encode_exec(const Exec& request);

// The receiving side for one connection: frames of an EXEC go in, whole
// requests come out.
class ExecAssembler {
 public:
  struct Request {
    uint32_t stream = 0;
    Exec exec;
    // Non-empty: the request is refused (malformed or over a bound), and
    // this says why; the stream gets an ERROR.
    std::string error;
  };

  enum class Offer {
    kNotMine,  // not part of an EXEC: handle it as usual
    kPending,  // taken: the EXEC continues in later frames
    kReady,    // an EXEC is complete (or refused): take() it
  };

  // Offers every frame from the host, in order. Throws Error ("protocol
  // error: ...") when the frame breaks the sequence: an EXEC on stream 0, an
  // EXEC_MORE without an unfinished EXEC, on another stream or malformed,
  // any other frame (but HELLO) while an EXEC is unfinished. The caller
  // then drops the connection's state, this included (reset()).
  Offer offer(const Frame& f);
  Request take();

  // An EXEC with kExecMoreFollows awaits its last EXEC_MORE.
  bool busy() const { return busy_; }
  uint32_t stream() const { return current_.stream; }
  // Forgets an unfinished request (the host went away, or a new session).
  void reset();

 private:
  void add(std::vector<std::string>& to, std::vector<std::string>& items);

  Request current_;
  bool busy_ = false;
  bool ready_ = false;
  size_t items_ = 0;
  size_t bytes_ = 0;
};

}  // namespace kestrel::proto
