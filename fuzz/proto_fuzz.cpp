// Feeds arbitrary bytes to the frame decoder and every message decoder. The
// decoders must reject bad input with kestrel::Error, never crash, read out
// of bounds or allocate without bound; what they accept must re-encode to an
// equivalent message.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "proto/frame.hpp"
#include "proto/messages.hpp"
#include "util/error.hpp"

using namespace kestrel::proto;

namespace {

template <typename M>
void roundtrip(std::string_view payload) {
  try {
    M m = M::decode(payload);
    std::string again = m.encode();
    M m2 = M::decode(again);
    if (m2.encode() != again) __builtin_trap();
  } catch (const kestrel::Error&) {
  }
}

void decode_payload(const Frame& f) {
  switch (f.type) {
    case Type::kHello:
      roundtrip<Hello>(f.payload);
      break;
    case Type::kSetup:
      roundtrip<SetupRequest>(f.payload);
      break;
    case Type::kExec:
      roundtrip<Exec>(f.payload);
      break;
    case Type::kExit:
      roundtrip<ExitStatus>(f.payload);
      break;
    case Type::kResize:
      roundtrip<WindowSize>(f.payload);
      break;
    case Type::kSignal:
      try {
        decode_i32(f.payload);
      } catch (const kestrel::Error&) {
      }
      break;
    case Type::kError:
      try {
        decode_text(f.payload);
      } catch (const kestrel::Error&) {
      }
      break;
    default:
      break;
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view input(reinterpret_cast<const char*>(data), size);
  // First byte picks how the input is split into reads, to exercise partial frames.
  size_t step = size ? (static_cast<size_t>(data[0]) % 17) + 1 : 1;
  FrameDecoder decoder;
  try {
    for (size_t i = 0; i < input.size(); i += step) {
      decoder.feed(input.substr(i, step));
      while (auto f = decoder.next()) {
        if (f->payload.size() > kMaxPayload) __builtin_trap();
        decode_payload(*f);
      }
    }
  } catch (const kestrel::Error&) {
  }
  // Also treat the whole input as a bare payload of each kind.
  roundtrip<Hello>(input);
  roundtrip<SetupRequest>(input);
  roundtrip<Exec>(input);
  roundtrip<ExitStatus>(input);
  return 0;
}
