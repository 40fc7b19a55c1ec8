// An EXEC request turned into a running program and the agent's ends of its
// standard descriptors: pipes, or a pseudo-terminal with the program as the
// session leader and the terminal as its controlling terminal.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>

#include "proto/messages.hpp"
#include "util/fd.hpp"

namespace kestrel::agent {

struct Program {
  pid_t pid = -1;  // also the process group (and session) id
  bool pty = false;
  // Agent ends, all non-blocking and close-on-exec:
  UniqueFd input;   // stdin pipe, or the pty master; invalid when stdin is /dev/null
  UniqueFd output;  // stdout pipe, or the pty master
  UniqueFd errors;  // stderr pipe; invalid with a pty (the terminal carries both)
};

// Starts request.argv in `root` ("" for our own root). Throws Error with the
// message the host gets in ERROR, e.g. "cannot execute 'x': No such file or directory".
Program start_program(const proto::Exec& request, const std::string& root);

// TIOCSWINSZ on a pty master; the kernel sends SIGWINCH to the foreground group.
void set_window_size(int pty_master, uint32_t rows, uint32_t cols);

}  // namespace kestrel::agent
