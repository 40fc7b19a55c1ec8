// Feeds arbitrary bytes to the frame decoder and every message decoder (SETUP
// with its mount kinds, SERVICE with its readiness checks, NETWORK with its
// validation included), and
// the decoded frames to an ExecAssembler as the agent does. The decoders
// must reject bad input with kestrel::Error, never crash, read out of bounds
// or allocate without bound; what they accept must re-encode to an
// equivalent message; what the assembler hands out stays within the bounds
// of docs/protocol.md, "Large EXEC", and splits again into valid frames.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "proto/exec_frames.hpp"
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

// A SERVICE the decoder accepts is within its bounds, and the agent's
// checks (validate, parse_readiness) reject or accept it without crashing.
void service(std::string_view payload) {
  try {
    ServiceRequest s = ServiceRequest::decode(payload);
    if (s.name.size() > kMaxServiceName || s.command.size() > kMaxServiceText || s.ready.size() > kMaxServiceText)
      __builtin_trap();
    s.validate();
    Readiness r = parse_readiness(s.ready);
    if (r.kind == Readiness::Kind::kTcp && r.port == 0) __builtin_trap();
    if (r.kind == Readiness::Kind::kUnix && (r.text.empty() || r.text[0] != '/')) __builtin_trap();
  } catch (const kestrel::Error&) {
  }
}

// A NETWORK the decoder accepts is within its bounds; validate() rejects or
// accepts it without crashing, and what it accepts has sane NICs and routes.
void network(std::string_view payload) {
  try {
    NetworkRequest n = NetworkRequest::decode(payload);
    if (n.nics.size() > kMaxNics || n.routes.size() > kMaxRoutes || n.hosts.size() > kMaxNetworkText ||
        n.resolv_conf.size() > kMaxNetworkText)
      __builtin_trap();
    for (const auto& nic : n.nics)
      if (nic.mac.size() > kMaxMacText || nic.prefix < 0 || nic.prefix > 255) __builtin_trap();
    n.validate();
    for (const auto& nic : n.nics) {
      MacAddress mac = parse_mac(nic.mac);
      if ((mac[0] & 1) || nic.prefix < 8 || nic.prefix > 30) __builtin_trap();
    }
    for (const auto& r : n.routes)
      if (r.prefix < 0 || r.prefix > 32 || (r.destination & ~prefix_netmask(r.prefix)) != 0) __builtin_trap();
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
    case Type::kExecMore:
      roundtrip<ExecMore>(f.payload);
      break;
    case Type::kService:
      roundtrip<ServiceRequest>(f.payload);
      service(f.payload);
      break;
    case Type::kNetwork:
      roundtrip<NetworkRequest>(f.payload);
      network(f.payload);
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

// One frame into the assembler; a violation resets it, as the agent's
// protocol_error() does.
void assemble(ExecAssembler& assembler, const Frame& f) {
  try {
    if (assembler.offer(f) != ExecAssembler::Offer::kReady) return;
    ExecAssembler::Request r = assembler.take();
    if (assembler.busy()) __builtin_trap();
    if (!r.error.empty()) return;
    const Exec& e = r.exec;
    if (e.argv.empty() || (e.flags & kExecMoreFollows)) __builtin_trap();
    if (e.argv.size() + e.env.size() > kMaxExecItems) __builtin_trap();
    if (exec_string_bytes(e.argv) + exec_string_bytes(e.env) > kMaxExecBytes) __builtin_trap();
    // What was accepted can be sent again, in frames the decoder takes.
    for (const auto& out : encode_exec(e)) {
      if (out.payload.size() > kMaxPayload) __builtin_trap();
    }
  } catch (const kestrel::Error&) {
    assembler.reset();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view input(reinterpret_cast<const char*>(data), size);
  // First byte picks how the input is split into reads, to exercise partial frames.
  size_t step = size ? (static_cast<size_t>(data[0]) % 17) + 1 : 1;
  FrameDecoder decoder;
  ExecAssembler assembler;
  try {
    for (size_t i = 0; i < input.size(); i += step) {
      decoder.feed(input.substr(i, step));
      while (auto f = decoder.next()) {
        if (f->payload.size() > kMaxPayload) __builtin_trap();
        decode_payload(*f);
        assemble(assembler, *f);
      }
    }
  } catch (const kestrel::Error&) {
  }
  // Also treat the whole input as a bare payload of each kind.
  roundtrip<Hello>(input);
  roundtrip<SetupRequest>(input);
  roundtrip<Exec>(input);
  roundtrip<ExecMore>(input);
  roundtrip<ExitStatus>(input);
  roundtrip<ServiceRequest>(input);
  service(input);
  roundtrip<NetworkRequest>(input);
  network(input);
  return 0;
}
