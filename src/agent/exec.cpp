#include "agent/exec.hpp"

#include <fcntl.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>

#include <climits>

#include "agent/spawn.hpp"
#include "util/error.hpp"
#include "util/io.hpp"
#include "util/process.hpp"

namespace kestrel::agent {

namespace {

struct Terminal {
  UniqueFd master, slave;
};

Terminal make_terminal(uint32_t rows, uint32_t cols) {
  Terminal t;
  t.master = UniqueFd(::posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC));
  if (!t.master) fail_errno("cannot open a pseudo-terminal (/dev/ptmx)");
  if (::unlockpt(t.master.get()) != 0) fail_errno("cannot unlock a pseudo-terminal");
  // TIOCGPTPEER opens the slave without a path lookup, which matters because
  // the program may see another /dev (chroot).
  t.slave = UniqueFd(::ioctl(t.master.get(), TIOCGPTPEER, O_RDWR | O_NOCTTY | O_CLOEXEC));
  if (!t.slave) fail_errno("cannot open a pseudo-terminal's slave side");
  if (rows && cols) set_window_size(t.master.get(), rows, cols);
  return t;
}

UniqueFd open_null() {
  UniqueFd fd(::open("/dev/null", O_RDWR | O_CLOEXEC));
  if (!fd) fail_errno("cannot open /dev/null");
  return fd;
}

}  // namespace

void set_window_size(int pty_master, uint32_t rows, uint32_t cols) {
  winsize ws{};
  ws.ws_row = static_cast<unsigned short>(rows > USHRT_MAX ? USHRT_MAX : rows);
  ws.ws_col = static_cast<unsigned short>(cols > USHRT_MAX ? USHRT_MAX : cols);
  if (::ioctl(pty_master, TIOCSWINSZ, &ws) != 0) fail_errno("cannot set the window size");
}

Program start_program(const proto::Exec& request, const std::string& root) {
  SpawnSpec spec;
  spec.argv = request.argv;
  spec.env = request.env;
  spec.cwd = request.cwd;
  spec.root = root;

  Program p;
  if (request.flags & proto::kExecPty) {
    Terminal t = make_terminal(request.rows, request.cols);
    // Everything that can fail happens before the spawn, so that an error
    // never leaves a program running that nobody tracks.
    set_nonblocking(t.master.get(), true);
    if (request.flags & proto::kExecStdin) {
      p.input = UniqueFd(::fcntl(t.master.get(), F_DUPFD_CLOEXEC, 3));
      if (!p.input) fail_errno("cannot duplicate a pseudo-terminal descriptor");
    }
    spec.stdin_fd = spec.stdout_fd = spec.stderr_fd = spec.ctty_fd = t.slave.get();
    p.pid = spawn_process(spec);
    p.pty = true;
    // Only the program holds the slave now, so reading the master gives EIO
    // once the program and everything it started have closed it.
    t.slave.reset();
    p.output = std::move(t.master);
    return p;
  }

  Pipe out = make_pipe();
  Pipe err = make_pipe();
  Pipe in;
  UniqueFd null;
  if (request.flags & proto::kExecStdin) {
    in = make_pipe();
    spec.stdin_fd = in.read.get();
  } else {
    null = open_null();
    spec.stdin_fd = null.get();
  }
  spec.stdout_fd = out.write.get();
  spec.stderr_fd = err.write.get();
  // O_NONBLOCK is per open file: setting it on our ends leaves the program's alone.
  if (in.write) set_nonblocking(in.write.get(), true);
  set_nonblocking(out.read.get(), true);
  set_nonblocking(err.read.get(), true);
  p.pid = spawn_process(spec);
  p.input = std::move(in.write);
  p.output = std::move(out.read);
  p.errors = std::move(err.read);
  return p;
}

}  // namespace kestrel::agent
