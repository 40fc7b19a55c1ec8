#include "host/environment.hpp"

#include <fnmatch.h>
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>

#include "util/fs.hpp"
#include "util/random.hpp"
#include "util/strings.hpp"
#include "vm/host_facts.hpp"

namespace kestrel::host {

const std::vector<std::string>& denied_variables() {
  static const std::vector<std::string> denied = {
      // The guest has its own name, display-less console and session.
      "HOSTNAME",
      "DISPLAY",
      "WAYLAND_DISPLAY",
      "XAUTHORITY",
      "XDG_RUNTIME_DIR",
      "XDG_SESSION_ID",
      "DBUS_SESSION_BUS_ADDRESS",
      // Agents and sockets of the host session are unreachable from the VM.
      "SSH_AUTH_SOCK",
      "SSH_AGENT_PID",
      "SSH_CONNECTION",
      "SSH_CLIENT",
      "SSH_TTY",
      "GPG_AGENT_INFO",
      // systemd's per-process handles belong to the host process tree.
      "LISTEN_FDS",
      "LISTEN_PID",
      "LISTEN_FDNAMES",
      "NOTIFY_SOCKET",
      "INVOCATION_ID",
      "JOURNAL_STREAM",
  };
  return denied;
}

bool is_denied_variable(std::string_view name) {
  const auto& d = denied_variables();
  return std::find(d.begin(), d.end(), name) != d.end();
}

namespace {

bool matches_any(const std::vector<std::string>& patterns, const std::string& name) {
  return std::any_of(patterns.begin(), patterns.end(),
                     [&](const std::string& p) { return ::fnmatch(p.c_str(), name.c_str(), 0) == 0; });
}

}  // namespace

std::vector<std::string> guest_environment(char** env, const EnvPolicy& policy) {
  std::vector<std::string> out;
  for (char** e = env; e && *e; ++e) {
    std::string_view entry(*e);
    auto eq = entry.find('=');
    if (eq == std::string_view::npos) continue;
    std::string name(entry.substr(0, eq));
    if (is_denied_variable(name) || !matches_any(policy.pass, name) || matches_any(policy.deny, name)) continue;
    out.emplace_back(entry);
  }
  return out;
}

std::vector<std::string> default_exec_environment() {
  std::vector<std::string> env = {"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME=/root",
                                  "USER=root", "LOGNAME=root", "SHELL=/bin/sh"};
  const char* term = std::getenv("TERM");
  env.push_back(std::string("TERM=") + (term && *term ? term : "linux"));
  if (const char* lang = std::getenv("LANG"); lang && *lang) env.push_back(std::string("LANG=") + lang);
  return env;
}

std::vector<proto::Limit> host_limits() {
  std::vector<proto::Limit> out;
  for (int resource : {RLIMIT_CORE, RLIMIT_NOFILE, RLIMIT_NPROC, RLIMIT_MEMLOCK, RLIMIT_STACK}) {
    rlimit r{};
    if (::getrlimit(resource, &r) != 0) continue;
    out.push_back(
        {static_cast<uint32_t>(resource), static_cast<uint64_t>(r.rlim_cur), static_cast<uint64_t>(r.rlim_max)});
  }
  return out;
}

namespace {

bool valid_zone_name(std::string_view name) {
  if (name.empty() || name.size() > proto::kMaxTimezoneName || name.front() == '/' || name.find("..") != name.npos)
    return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '/' || c == '_' ||
           c == '-' || c == '+';
  });
}

}  // namespace

TimeZone host_time_zone(const std::filesystem::path& root) {
  TimeZone tz;
  if (auto data = read_small_file(root / "etc/localtime", proto::kMaxLocaltime); data && data->starts_with("TZif"))
    tz.localtime = std::move(*data);
  std::string name;
  if (auto text = read_small_file(root / "etc/timezone", 4096)) name = std::string(trim(split(*text, '\n')[0]));
  if (!valid_zone_name(name)) {
    name.clear();
    std::error_code ec;
    std::string link = std::filesystem::read_symlink(root / "etc/localtime", ec).string();
    if (size_t at = link.rfind("zoneinfo/"); !ec && at != std::string::npos) name = link.substr(at + 9);
  }
  if (valid_zone_name(name)) tz.name = name;
  return tz;
}

proto::SetupRequest setup_request(const std::string& hostname, std::vector<proto::Mount> mounts) {
  proto::SetupRequest setup;
  setup.hostname = hostname;
  setup.realtime_ns =
      std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::system_clock::now().time_since_epoch()).count();
  setup.entropy = random_bytes(64);
  setup.mounts = std::move(mounts);
  setup.limits = host_limits();
  bool host_root = std::any_of(setup.mounts.begin(), setup.mounts.end(),
                               [](const proto::Mount& m) { return m.kind == proto::MountKind::kRootOverlay; });
  if (host_root) {
    // The root overlay's lower layer is the host's "/" (host/shares.cpp).
    setup.hosts = read_small_file("/etc/hosts", proto::kMaxSetupHosts, /*follow=*/false).value_or("");
  } else if (!hostname.empty()) {
    // An image's root: mounted by this SETUP, or already by its template's.
    TimeZone tz = host_time_zone(vm::host_root());
    setup.localtime = std::move(tz.localtime);
    setup.timezone = std::move(tz.name);
  }
  return setup;
}

}  // namespace kestrel::host
