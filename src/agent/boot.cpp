#include "agent/boot.hpp"

#include <fcntl.h>
#include <net/if.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "agent/log.hpp"
#include "util/fd.hpp"
#include "util/fs.hpp"

namespace kestrel::agent {

namespace {

void mount_one(const char* source, const char* target, const char* fstype, unsigned long flags, const char* data) {
  if (::mkdir(target, 0755) != 0 && errno != EEXIST) {
    log_errorf("cannot create {}: {}", target, std::strerror(errno));
    return;
  }
  if (::mount(source, target, fstype, flags, data) != 0 && errno != EBUSY)
    log_errorf("cannot mount {} on {}: {}", fstype, target, std::strerror(errno));
}

bool flag_value(std::string_view v) { return !(v.empty() || v == "0" || v == "no" || v == "off" || v == "false"); }

}  // namespace

BootParams parse_cmdline(std::string_view cmdline) {
  BootParams p;
  while (!cmdline.empty()) {
    size_t start = cmdline.find_first_not_of(" \t\n");
    if (start == std::string_view::npos) break;
    cmdline.remove_prefix(start);
    size_t end = cmdline.find_first_of(" \t\n");
    std::string_view word = cmdline.substr(0, end);
    cmdline.remove_prefix(end == std::string_view::npos ? cmdline.size() : end);
    if (word.starts_with("kestrel.name=")) {
      p.name = std::string(word.substr(13));
    } else if (word.starts_with("kestrel.debug=")) {
      p.debug = flag_value(word.substr(14));
    } else if (word.starts_with("kestrel.net=")) {
      p.net = flag_value(word.substr(12));
    }
  }
  return p;
}

void mount_pseudo_filesystems() {
  constexpr unsigned long kSafe = MS_NOSUID | MS_NODEV | MS_NOEXEC;
  mount_one("devtmpfs", "/dev", "devtmpfs", MS_NOSUID, "mode=0755");
  mount_one("proc", "/proc", "proc", kSafe, nullptr);
  mount_one("sysfs", "/sys", "sysfs", kSafe, nullptr);
  mount_one("devpts", "/dev/pts", "devpts", MS_NOSUID | MS_NOEXEC, "gid=5,mode=0620,ptmxmode=0666");
  mount_one("tmpfs", "/dev/shm", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777");
  mount_one("tmpfs", "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777");
  mount_one("tmpfs", "/run", "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755");
}

void ensure_std_descriptors() {
  for (int fd = 0; fd < 3; ++fd) {
    if (::fcntl(fd, F_GETFD) >= 0) continue;
    int null = ::open("/dev/null", O_RDWR);
    if (null < 0) {
      log_errorf("cannot open /dev/null: {}", std::strerror(errno));
      return;
    }
    if (null != fd) {
      ::dup2(null, fd);
      ::close(null);
    }
  }
}

BootParams read_boot_params() {
  try {
    return parse_cmdline(read_file("/proc/cmdline"));
  } catch (const std::exception& e) {
    log_error(e.what());
    return {};
  }
}

void set_hostname(std::string_view name) {
  if (name.empty()) return;
  if (::sethostname(name.data(), name.size()) != 0)
    log_errorf("cannot set the hostname to '{}': {}", name, std::strerror(errno));
}

void bring_up_loopback() {
  UniqueFd sock(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  if (!sock) {
    log_errorf("cannot bring up lo: socket: {}", std::strerror(errno));
    return;
  }
  ifreq ifr{};
  std::strncpy(ifr.ifr_name, "lo", IFNAMSIZ - 1);
  if (::ioctl(sock.get(), SIOCGIFFLAGS, &ifr) != 0) {
    log_errorf("cannot bring up lo: {}", std::strerror(errno));
    return;
  }
  ifr.ifr_flags = static_cast<short>(ifr.ifr_flags | IFF_UP | IFF_RUNNING);
  // The kernel gives lo 127.0.0.1/8 (and ::1) when it comes up.
  if (::ioctl(sock.get(), SIOCSIFFLAGS, &ifr) != 0) log_errorf("cannot bring up lo: {}", std::strerror(errno));
}

}  // namespace kestrel::agent
