#include "agent/ports.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstring>
#include <memory>
#include <thread>

#include "agent/log.hpp"
#include "proto/frame.hpp"
#include "util/error.hpp"

namespace kestrel::agent {

namespace {

// Reads a small sysfs file; empty when it does not exist (yet).
std::string read_small(const std::string& path) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) return {};
  char buf[256];
  ssize_t n = ::read(fd.get(), buf, sizeof buf);
  if (n <= 0) return {};
  std::string s(buf, static_cast<size_t>(n));
  while (!s.empty() && (s.back() == '\n' || s.back() == '\0')) s.pop_back();
  return s;
}

}  // namespace

int port_index(std::string_view name) {
  std::string_view prefix = proto::kPortPrefix;
  if (!name.starts_with(prefix)) return -1;
  name.remove_prefix(prefix.size());
  int k = -1;
  auto [end, ec] = std::from_chars(name.data(), name.data() + name.size(), k);
  if (ec != std::errc() || end != name.data() + name.size() || (name.size() > 1 && name[0] == '0')) return -1;
  return k >= 0 && k < proto::kPortCount ? k : -1;
}

UniqueFd open_port(const std::string& device) {
  UniqueFd fd(::open(device.c_str(), O_RDWR | O_NONBLOCK | O_CLOEXEC | O_NOCTTY));
  if (!fd) fail_errno("cannot open {}", device);
  if (::fcntl(fd.get(), F_SETOWN, ::getpid()) != 0) fail_errno("cannot set the owner of {}", device);
  return fd;
}

void set_async(int fd, bool on) {
  int flags = ::fcntl(fd, F_GETFL);
  if (flags < 0) fail_errno("fcntl(F_GETFL)");
  int wanted = on ? (flags | O_ASYNC) : (flags & ~O_ASYNC);
  if (wanted != flags && ::fcntl(fd, F_SETFL, wanted) != 0) fail_errno("cannot set O_ASYNC");
}

bool PortFinder::complete() const { return indices_.size() == static_cast<size_t>(proto::kPortCount); }

std::vector<OpenPort> PortFinder::find_new() {
  std::vector<OpenPort> out;
  std::unique_ptr<DIR, int (*)(DIR*)> dir(::opendir(sysfs_dir_.c_str()), ::closedir);
  if (!dir) return out;  // virtio_console not (yet) loaded
  while (dirent* e = ::readdir(dir.get())) {
    std::string entry = e->d_name;
    if (entry[0] == '.' || seen_.count(entry)) continue;
    std::string name = read_small(sysfs_dir_ + "/" + entry + "/name");
    if (name.empty()) continue;  // the host has not named it yet
    int index = port_index(name);
    if (index < 0) {
      seen_.insert(entry);  // someone else's port
      continue;
    }
    if (indices_.count(index)) {
      log_errorf("two virtio-serial ports are named {}; using the first", name);
      seen_.insert(entry);
      continue;
    }
    std::string device = dev_dir_ + "/" + entry;
    // The device node may lag behind sysfs for a moment: retry next time.
    if (::access(device.c_str(), F_OK) != 0) continue;
    seen_.insert(entry);
    try {
      out.push_back(OpenPort{index, name, open_port(device)});
      indices_.insert(index);
    } catch (const Error& err) {
      log_error(err.what());
    }
  }
  return out;
}

std::vector<OpenPort> PortFinder::wait_for_all(Deadline deadline) {
  std::vector<OpenPort> out;
  for (;;) {
    for (auto& p : find_new()) out.push_back(std::move(p));
    if (complete() || deadline.expired()) return out;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
}

}  // namespace kestrel::agent
