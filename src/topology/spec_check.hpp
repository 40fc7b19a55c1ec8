// The checks of a topology spec (spec_check.cpp), inside topology/: the
// checks of one field, shared by the file reader (spec.cpp, which adds the
// line of the value) and check_spec (which adds the node), and check_spec
// with the name the file has in messages. They throw Error.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "topology/spec.hpp"

namespace kestrel::topology {

inline constexpr size_t kMaxNameLength = 32;
inline constexpr int kMinPrefix = 8, kMaxPrefix = 30;

// [a-z0-9]: the characters a name starts with.
bool is_lower_or_digit(char c);

// Topology and node names become host names and file names.
bool valid_name(std::string_view s);

void check_node_name(const std::string& name);
void check_memory(int64_t mib);
void check_cpus(int64_t cpus);

// As the `image` configuration key: a value ending in ".toml" or holding a
// '/' is a recipe's path; anything else an image's name or id.
bool is_recipe_path(std::string_view image);
void check_image(const std::string& image);

// check_spec, with the file as its messages name it ("" for a spec built in
// code: then they start with "nodes[I]: " or "links[I]: ").
void check_spec(const Spec& spec, const std::string& display);

}  // namespace kestrel::topology
