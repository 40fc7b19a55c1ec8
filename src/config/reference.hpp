// The key table as documentation: plain text for `kestrel config --keys` and
// the Markdown table of docs/config.md (a unit test keeps that file equal to
// what this prints).
#pragma once

#include <string>

namespace kestrel::config {

std::string key_reference_text();
std::string key_reference_markdown();

}  // namespace kestrel::config
