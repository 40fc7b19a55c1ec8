#include "proto/exec_frames.hpp"

#include "proto/wire.hpp"
#include "util/error.hpp"

namespace kestrel::proto {

namespace {

// Payload bytes around the items: EXEC's two list counts, cwd's length and
// flags, rows, cols; EXEC_MORE's last and two list counts.
constexpr size_t kExecFixed = 4 + 4 + 4 + 12;
constexpr size_t kExecMoreFixed = 1 + 4 + 4;

// Which items one frame carries: argv[argv_begin, argv_end) and likewise env.
struct Range {
  size_t argv_begin = 0, argv_end = 0;
  size_t env_begin = 0, env_end = 0;
  bool empty() const { return argv_end == argv_begin && env_end == env_begin; }
};

void put_items(Writer& w, const std::vector<std::string>& items, size_t begin, size_t end) {
  w.u32(static_cast<uint32_t>(end - begin));
  for (size_t i = begin; i < end; ++i) w.bytes(items[i]);
}

// Cuts the items into frames: argv first, then env, each frame filled up to
// the payload and list limits.
std::vector<Range> split(const Exec& r) {
  std::vector<Range> ranges(1);
  size_t size = kExecFixed + r.cwd.size();
  auto place = [&](bool env, size_t i) {
    const std::string& item = env ? r.env[i] : r.argv[i];
    Range* cur = &ranges.back();
    size_t count = env ? cur->env_end - cur->env_begin : cur->argv_end - cur->argv_begin;
    if (size + 4 + item.size() > kMaxPayload || count >= kMaxListItems) {
      if (cur->empty())
        fail("cannot send the command line to the VM: {} {} has {} bytes, more than fits in a frame of {}",
             env ? "environment entry" : "argument", i, item.size(), kMaxPayload);
      ranges.push_back({cur->argv_end, cur->argv_end, cur->env_end, cur->env_end});
      cur = &ranges.back();
      size = kExecMoreFixed;
      if (size + 4 + item.size() > kMaxPayload)
        fail("cannot send the command line to the VM: {} {} has {} bytes, more than fits in a frame of {}",
             env ? "environment entry" : "argument", i, item.size(), kMaxPayload);
    }
    (env ? cur->env_end : cur->argv_end) = i + 1;
    size += 4 + item.size();
  };
  for (size_t i = 0; i < r.argv.size(); ++i) place(false, i);
  for (size_t i = 0; i < r.env.size(); ++i) place(true, i);
  return ranges;
}

[[noreturn]] void violation(const std::string& message) { throw Error("protocol error: " + message); }

}  // namespace

size_t exec_string_bytes(const std::vector<std::string>& items) {
  size_t n = 0;
  for (const auto& s : items) n += s.size() + 1;
  return n;
}

std::vector<OutFrame> encode_exec(const Exec& r) {
  if (r.argv.empty()) fail("cannot send EXEC: empty argv");
  size_t items = r.argv.size() + r.env.size();
  size_t bytes = exec_string_bytes(r.argv) + exec_string_bytes(r.env);
  if (items > kMaxExecItems || bytes > kMaxExecBytes)
    fail(
        "cannot run '{}' in the VM: {} arguments and environment variables of {} bytes exceed the protocol's bounds "
        "({} items, {} bytes)",
        r.argv[0], items, bytes, kMaxExecItems, kMaxExecBytes);
  if (r.cwd.size() + kExecFixed > kMaxPayload) fail("cannot send EXEC: working directory of {} bytes", r.cwd.size());

  std::vector<Range> ranges = split(r);
  uint32_t flags = r.flags & ~kExecMoreFollows;
  if (ranges.size() > 1) flags |= kExecMoreFollows;
  std::vector<OutFrame> out;
  out.reserve(ranges.size());
  for (size_t k = 0; k < ranges.size(); ++k) {
    const Range& g = ranges[k];
    Writer w;
    if (k == 0) {
      put_items(w, r.argv, g.argv_begin, g.argv_end);
      put_items(w, r.env, g.env_begin, g.env_end);
      w.bytes(r.cwd).u32(flags).u32(r.rows).u32(r.cols);
      out.push_back({Type::kExec, w.take()});
    } else {
      w.u8(static_cast<uint8_t>(k + 1 == ranges.size() ? 1 : 0));
      put_items(w, r.argv, g.argv_begin, g.argv_end);
      put_items(w, r.env, g.env_begin, g.env_end);
      out.push_back({Type::kExecMore, w.take()});
    }
  }
  return out;
}

ExecAssembler::Offer ExecAssembler::offer(const Frame& f) {
  if (busy_) {
    // A new host session: the caller resets us.
    if (f.type == Type::kHello) return Offer::kNotMine;
    if (f.type != Type::kExecMore || f.stream != current_.stream)
      violation(fmt::format("{} frame on stream {} while the EXEC on stream {} awaits its last EXEC_MORE",
                            type_name(f.type), f.stream, current_.stream));
    ExecMore more;
    try {
      more = ExecMore::decode(f.payload);
    } catch (const Error& e) {
      violation(e.what());
    }
    add(current_.exec.argv, more.argv);
    add(current_.exec.env, more.env);
    if (!more.last) return Offer::kPending;
    busy_ = false;
    ready_ = true;
    return Offer::kReady;
  }
  if (f.type == Type::kExecMore) violation(fmt::format("EXEC_MORE on stream {} without an unfinished EXEC", f.stream));
  if (f.type != Type::kExec) return Offer::kNotMine;
  if (f.stream == 0) violation("EXEC on stream 0");
  reset();
  current_.stream = f.stream;
  ready_ = true;
  try {
    current_.exec = Exec::decode(f.payload);
  } catch (const Error& e) {
    // Malformed but framed: the request fails, the connection goes on.
    current_.error = e.what();
    return Offer::kReady;
  }
  items_ = current_.exec.argv.size() + current_.exec.env.size();
  bytes_ = exec_string_bytes(current_.exec.argv) + exec_string_bytes(current_.exec.env);
  if (!(current_.exec.flags & kExecMoreFollows)) return Offer::kReady;
  current_.exec.flags &= ~kExecMoreFollows;
  ready_ = false;
  busy_ = true;
  return Offer::kPending;
}

void ExecAssembler::add(std::vector<std::string>& to, std::vector<std::string>& items) {
  items_ += items.size();
  bytes_ += exec_string_bytes(items);
  if (!current_.error.empty()) return;  // refused already: the rest is dropped
  if (items_ > kMaxExecItems || bytes_ > kMaxExecBytes) {
    current_.error = fmt::format(
        "cannot execute '{}': its arguments and environment exceed the protocol's bounds ({} items, {} bytes)",
        current_.exec.argv.front(), kMaxExecItems, kMaxExecBytes);
    current_.exec.argv = {current_.exec.argv.front()};
    current_.exec.env = {};
    return;
  }
  for (auto& s : items) to.push_back(std::move(s));
}

ExecAssembler::Request ExecAssembler::take() {
  if (!ready_) fail("internal error: no EXEC is ready");
  Request r = std::move(current_);
  reset();
  return r;
}

void ExecAssembler::reset() {
  current_ = Request{};
  busy_ = false;
  ready_ = false;
  items_ = 0;
  bytes_ = 0;
}

}  // namespace kestrel::proto
