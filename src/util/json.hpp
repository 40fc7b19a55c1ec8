// JSON (nlohmann-json) with its parser and serializer compiled once, in
// util/json.cpp: instantiating json::parse and dump costs about 5 s of
// compile time in every file that calls them (2 cores: a build's minutes).
// Files that read or write JSON text call these; accessors stay nlohmann's.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

namespace kestrel {

// `text` parsed; a discarded value (is_discarded(), and every at() throws
// nlohmann::json::exception) when it is not JSON. Never throws.
nlohmann::json parse_json(std::string_view text);

// `j` as text: compact (indent < 0) or indented. Strings that are not UTF-8
// throw nlohmann::json::exception unless `lossy`, which replaces their bad
// bytes with U+FFFD.
std::string dump_json(const nlohmann::json& j, int indent = -1, bool lossy = false);

}  // namespace kestrel
