#pragma once

namespace kestrel::cli {

// The whole CLI: dispatch through the command table, one top-level catch
// that prints "kestrel: error: ..." and picks the exit status.
int main(int argc, char** argv);

}  // namespace kestrel::cli
