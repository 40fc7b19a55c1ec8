// Starting a program the way the agent must: in a new session, optionally
// chrooted into the guest root, with exactly the given environment and
// descriptors, and with a controlling terminal when asked. util/process.hpp
// is the host's equivalent; the agent needs chroot, TIOCSCTTY and a PATH
// lookup in the program's environment rather than ours.
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

namespace kestrel::agent {

struct SpawnSpec {
  std::vector<std::string> argv;  // argv[0] is looked up in PATH from env when it has no '/'
  std::vector<std::string> env;   // the whole environment
  std::string cwd;                // inside root; empty means "/"
  std::string root;               // chroot here first; empty: stay in our root
  // Descriptors (in the caller) that become 0, 1 and 2 in the program.
  int stdin_fd = -1;
  int stdout_fd = -1;
  int stderr_fd = -1;
  // A terminal (in the caller) that becomes the controlling terminal.
  int ctty_fd = -1;
};

// Starts the program; its pid is also its process group and session id.
// Throws Error when it cannot be started, e.g.
// "cannot execute 'foo': No such file or directory".
// Every signal is unblocked and every disposition default in the program;
// all other descriptors are closed.
pid_t spawn_process(const SpawnSpec& spec);

// The paths execve() is tried with, in order: argv0 itself when it contains
// a '/', else each PATH entry of env joined with it (an empty entry is the
// working directory; no PATH means "/bin:/usr/bin", as in glibc).
std::vector<std::string> exec_candidates(const std::string& argv0, const std::vector<std::string>& env);

}  // namespace kestrel::agent
