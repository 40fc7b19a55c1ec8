// AgentServer: the protocol (docs/protocol.md) on a set of connections, in one
// poll loop with SIGCHLD and SIGIO folded in through a signalfd.
//
// Connections come in two kinds. A *port* is a virtio-serial port: always
// open, POLLHUP while no host is connected, SIGIO when that changes. A
// *socket* is a stream socket (tests, manual runs): EOF ends it for good.
// Either way, losing the host kills (SIGKILL, process group) every program
// started on that connection and forgets its state.
//
// The server needs neither PID 1 nor root: tests run it in a forked process
// on a socketpair, with a fake SETUP handler.
#pragma once

#include <poll.h>
#include <sys/types.h>

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "agent/exec.hpp"
#include "agent/oom.hpp"
#include "proto/connection.hpp"
#include "proto/exec_frames.hpp"
#include "proto/messages.hpp"
#include "util/deadline.hpp"
#include "util/fd.hpp"

namespace kestrel::agent {

class Console;
struct OpenPort;

struct ServerOptions {
  // The guest root programs run in before SETUP ("" = the agent's own).
  std::string root;
  // waitpid(-1): reap every child, orphans included (PID 1). Otherwise only
  // the programs the server started.
  bool reap_all = true;
  // SIGTERM and SIGINT end run() (not for PID 1).
  bool stop_on_term = false;
  // Backpressure: stop reading a connection's program output while its
  // output queue holds more than this...
  size_t max_queued_output = 4u << 20;
  // ...and stop reading a connection while its programs have more than this
  // of unread standard input pending.
  size_t max_stdin_backlog = 8u << 20;
  // Carries out SETUP in the current guest root (the second argument, ""
  // for the agent's own), returning the new guest root ("" = unchanged).
  // Throws InvalidSetup (agent/setup.hpp) to refuse a request without having
  // changed anything, Error to fail it (later SETUPs are refused then). Null:
  // SETUP is answered with ERROR.
  std::function<std::string(const proto::SetupRequest&, const std::string&)> setup;
  // Carries out NETWORK in the current guest root (the second argument, ""
  // for the agent's own). Throws Error with the message for the host's
  // ERROR (agent/network.hpp). Null: NETWORK is answered with ERROR (the
  // standalone agent leaves the host's network alone).
  std::function<void(const proto::NetworkRequest&, const std::string&)> network;
  // Where SERVICE logs go, inside the guest root (agent/services.hpp).
  std::string service_logs = "/run/kestrel/services";
  // Runs after a program exits, before its EXIT is sent: flushes what it
  // wrote to read-write shares, so it is on the host when the host reads
  // EXIT (and may kill the VM).
  std::function<void()> before_exit;
  // The console shell to reap, respawn and move into the guest root.
  Console* console = nullptr;
  // Looks for ports that appeared late; called about once a second while
  // fewer than proto::kPortCount ports are served.
  std::function<std::vector<OpenPort>()> find_ports;
};

class AgentServer {
 public:
  explicit AgentServer(ServerOptions options);
  ~AgentServer();
  AgentServer(const AgentServer&) = delete;
  AgentServer& operator=(const AgentServer&) = delete;

  void add_port(UniqueFd fd, std::string name);
  void add_socket(UniqueFd fd, std::string name);
  // A listening socket: every accepted connection is added as a socket.
  void add_listener(UniqueFd fd);

  // Serves until stop is requested (SIGTERM/SIGINT with stop_on_term).
  // Errors are logged per request and never end the loop.
  void run();
  // One round of the loop: waits at most timeout_ms for events.
  void run_once(int timeout_ms);
  bool stopping() const { return stopping_; }

 private:
  struct Stream {
    uint32_t id = 0;
    Program program;
    std::string stdin_pending;  // bytes from stdin_offset on are not written yet
    size_t stdin_offset = 0;
    bool stdin_eof = false;           // end of input received: close once pending is written
    bool input_at_line_start = true;  // pty: whether one VEOF ends the input
    OomMark oom;                      // the guest's OOM killer when it started
  };

  struct Conn {
    enum class Kind { kPort, kSocket };
    Kind kind = Kind::kSocket;
    std::string name;
    UniqueFd fd;
    proto::Connection wire;
    bool connected = false;
    bool closed = false;         // a socket that is gone: removed after this round
    bool requests_seen = false;  // a frame other than HELLO arrived from this host
    proto::ExecAssembler execs;  // an EXEC arriving in several frames
    std::map<uint32_t, std::unique_ptr<Stream>> streams;
    // Process groups of finished streams that still had members: killed too
    // when the host goes away.
    std::vector<pid_t> lingering;
    size_t stdin_backlog = 0;
  };

  enum class Slot { kSignal, kListener, kConn, kOutput, kErrors, kInput, kConsole };
  struct Watch {
    Slot slot;
    Conn* conn = nullptr;
    uint32_t stream = 0;
    int fd = -1;
  };

  // Event loop and connections (server.cpp).
  void add_conn(Conn::Kind kind, UniqueFd fd, std::string name);
  void build_poll_set();
  int poll_timeout(int limit_ms) const;
  void dispatch(const Watch& w, short revents);
  void on_signals();
  void reap_children();
  void check_ports();
  void on_connect(Conn& c);
  void on_disconnect(Conn& c);
  void on_conn_event(Conn& c, short revents);
  void read_frames(Conn& c);
  void forget_programs(Conn& c);
  void accept_on(int listener);
  void sweep();

  // Requests (requests.cpp).
  void handle_frame(Conn& c, proto::Frame& f);
  void protocol_error(Conn& c, const std::string& message);
  void on_hello(Conn& c, const proto::Frame& f);
  void on_setup(Conn& c, const proto::Frame& f);
  void on_service(Conn& c, const proto::Frame& f);
  void on_network(Conn& c, const proto::Frame& f);
  void on_exec(Conn& c, proto::ExecAssembler::Request request);
  void on_stdin(Conn& c, proto::Frame& f);
  void on_signal(Conn& c, const proto::Frame& f);
  void on_resize(Conn& c, const proto::Frame& f);
  std::string hello_info() const;
  proto::Hello greeting(uint32_t nonce) const;

  // Program I/O (streams.cpp).
  Stream* find_stream(Conn& c, uint32_t id, int fd = -1);
  enum class Pump { kData, kWouldBlock, kEnd };
  // One read from a program's output into the connection; kEnd when the
  // descriptor reached its end (and was closed).
  Pump pump_output(Conn& c, Stream& s, UniqueFd& fd, proto::Type type);
  void pump_input(Conn& c, Stream& s);
  void close_input(Conn& c, Stream& s);
  void on_program_exit(pid_t pid, int status);
  void finish_stream(Conn& c, uint32_t id, int status);

  ServerOptions options_;
  std::string root_;
  bool setup_done_ = false;    // a SETUP succeeded
  bool setup_failed_ = false;  // a SETUP failed midway: later ones are refused
  bool root_mounted_ = false;  // a SETUP mounted a root (overlay or disk)
  bool stopping_ = false;
  UniqueFd signal_fd_;
  std::vector<UniqueFd> listeners_;
  std::vector<std::unique_ptr<Conn>> conns_;
  std::unordered_map<pid_t, std::pair<Conn*, uint32_t>> pids_;
  bool ports_changed_ = false;  // SIGIO or a disconnect: re-check disconnected ports
  Deadline next_port_check_ = Deadline::never();
  Deadline next_port_scan_ = Deadline::never();
  std::vector<pollfd> pollfds_;
  std::vector<Watch> watches_;
};

}  // namespace kestrel::agent
