#include "agent/init.hpp"

#include <fcntl.h>
#include <sys/prctl.h>
#include <sys/reboot.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <exception>
#include <memory>
#include <string_view>

#include "agent/boot.hpp"
#include "agent/console.hpp"
#include "agent/log.hpp"
#include "agent/modules.hpp"
#include "agent/network.hpp"
#include "agent/ports.hpp"
#include "agent/server.hpp"
#include "agent/services.hpp"
#include "agent/setup.hpp"
#include "proto/frame.hpp"
#include "util/socket.hpp"

namespace kestrel::agent {

namespace {

using namespace std::chrono_literals;

// How long boot waits for all agent ports to show up. They come in one burst
// right after virtio_console loads; late ones are still picked up later.
constexpr auto kPortWait = 5s;

[[noreturn]] void power_off(std::string_view why) {
  log_errorf("{}; powering off", why);
  ::sync();
  ::reboot(RB_POWER_OFF);
  for (;;) ::pause();
}

[[noreturn]] void on_terminate() {
  std::string why = "terminate called";
  if (auto e = std::current_exception()) {
    try {
      std::rethrow_exception(e);
    } catch (const std::exception& ex) {
      why = ex.what();
    } catch (...) {
    }
  }
  power_off(why);
}

}  // namespace

void run_as_init() {
  std::set_terminate(on_terminate);
  try {
    mount_pseudo_filesystems();
    // The console shows these lines whatever the console log level (quiet).
    int console = ::open("/dev/console", O_WRONLY | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
    if (console >= 0) set_log_fd(console);
    ensure_std_descriptors();
    BootParams params = read_boot_params();
    set_debug(params.debug);
    debugf("started");

    load_modules("/lib/modules");
    // A topology's node (and its warm-start template): NICs probed now, not
    // at the first NETWORK of each clone.
    if (params.net) load_net_modules("/lib/modules");
    set_hostname(params.name);
    bring_up_loopback();
    // No NIC (`--network none`): a network that goes nowhere, set up before
    // a template is saved, so clones pay nothing for it.
    if (!params.net) set_up_offline_network();
    debugf("modules loaded, hostname set");

    PortFinder finder;
    std::vector<OpenPort> ports = finder.wait_for_all(Deadline::after(kPortWait));
    if (!finder.complete())
      log_errorf("found {} of {} virtio-serial ports named {}N", finder.found(), proto::kPortCount, proto::kPortPrefix);
    debugf("{} ports open", ports.size());
    timespec up{};
    clock_gettime(CLOCK_BOOTTIME, &up);
    notef("kestrel-agent {} ready {}.{:03} s after boot ({} of {} ports)", KESTREL_VERSION, up.tv_sec,
          up.tv_nsec / 1000000, ports.size(), proto::kPortCount);

    Console shell(Console::Options{});
    ServerOptions options;
    options.reap_all = true;
    auto written = std::make_shared<std::vector<std::string>>();
    options.setup = [written](const proto::SetupRequest& request, const std::string& current_root) {
      std::string root = apply_setup(request, current_root);
      // Every SETUP's read-write shares, each inside the root it was mounted in.
      for (auto& dir : write_through_dirs(request, root.empty() ? current_root : root))
        written->push_back(std::move(dir));
      return root;
    };
    options.before_exit = [written] { flush_dirs(*written); };
    options.network = [](const proto::NetworkRequest& request, const std::string& root) {
      apply_network(request, root);
    };
    options.console = &shell;
    options.find_ports = [&finder] { return finder.find_new(); };
    AgentServer server(std::move(options));
    for (auto& p : ports) server.add_port(std::move(p.fd), p.name);
    server.run();
  } catch (const std::exception& e) {
    power_off(fmt::format("cannot go on serving: {}", e.what()));
  }
  power_off("the agent's event loop ended");
}

int run_standalone(int argc, char** argv) {
  std::string path;
  std::string service_logs = kServiceLogDir;
  for (int i = 1; i < argc; ++i) {
    std::string_view arg = argv[i];
    if (arg == "--listen" && i + 1 < argc) {
      path = argv[++i];
    } else if (arg == "--service-logs" && i + 1 < argc) {
      service_logs = argv[++i];
    } else if (arg == "--debug") {
      set_debug(true);
    } else if (arg == "--version") {
      std::printf("kestrel-agent %s (protocol %u)\n", KESTREL_VERSION, proto::kVersion);
      return 0;
    } else {
      path.clear();
      break;
    }
  }
  if (path.empty()) {
    std::fprintf(stderr,
                 "usage: kestrel-agent --listen SOCKET [--service-logs DIR] [--debug]\n"
                 "(as PID 1 in a kestrel initramfs it serves the virtio-serial ports instead)\n");
    return 2;
  }
  try {
    // Orphans of our programs come to us, as they would to PID 1.
    ::prctl(PR_SET_CHILD_SUBREAPER, 1);
    ServerOptions options;
    options.reap_all = true;
    options.stop_on_term = true;
    options.service_logs = service_logs;
    AgentServer server(std::move(options));
    server.add_listener(unix_listen(path));
    server.run();
    ::unlink(path.c_str());
    return 0;
  } catch (const std::exception& e) {
    log_error(e.what());
    return 1;
  }
}

}  // namespace kestrel::agent
