// VM names: derived from the program or test name plus a random suffix, so
// many runs of one test can live side by side.
#pragma once

#include <string>
#include <string_view>

namespace kestrel::deploy {

// "target/debug/deps/my_crate-1a2b3c4d5e6f7a8b" -> "my-crate-3f9a2c":
// basename, cargo's hash suffix dropped, lowercased, [a-z0-9-] only,
// at most 24 characters, then "-" and 6 random hex digits. Inside a Slurm
// job the node's name comes between them ("my-crate-node12-3f9a2c", the
// node's name as a stem of at most 16 characters: `node`, by default
// SLURMD_NODENAME), so names stay unique across a cluster's shared output.
std::string make_vm_name(std::string_view program);
std::string make_vm_name(std::string_view program, std::string_view node);

// The stem without the random suffix (exposed for tests).
std::string name_stem(std::string_view program);

// A valid VM name: 1-63 characters of [a-z0-9-], not starting with '-'.
bool is_valid_vm_name(std::string_view name);

}  // namespace kestrel::deploy
