// Every subcommand is a row of one table (app.cpp): name, one-line help and
// handler. Handlers get their arguments (without "kestrel" and the command
// name), parse them into a struct, validate, act, and return the exit status.
#pragma once

#include <string>
#include <vector>

namespace kestrel::cli {

using Args = std::vector<std::string>;

int cmd_run(const Args& args);
int cmd_exec(const Args& args);
int cmd_serial(const Args& args);
int cmd_destroy(const Args& args);
int cmd_kernel(const Args& args);
int cmd_cache(const Args& args);
int cmd_image(const Args& args);
int cmd_ls(const Args& args);
int cmd_up(const Args& args);
int cmd_down(const Args& args);
int cmd_link(const Args& args);
int cmd_gc(const Args& args);
int cmd_hold(const Args& args);
int cmd_config(const Args& args);
int cmd_doctor(const Args& args);
int cmd_cargo(const Args& args);
int cmd_go(const Args& args);

// Exit statuses of kestrel itself (documented in `kestrel --help`).
constexpr int kExitUsage = 2;      // bad command line
constexpr int kExitTimeout = 124;  // the program ran past --timeout
constexpr int kExitKestrel = 125;  // kestrel failed (VM did not boot, ...), not the program
constexpr int kExitCannotExec = 126;
constexpr int kExitNotFound = 127;

// How the user can invoke this kestrel again: "kestrel" when that is what
// PATH finds, else the absolute path of the running binary.
std::string self_command();

// "kestrel: <message>" on stderr.
void say(const std::string& message);

}  // namespace kestrel::cli
