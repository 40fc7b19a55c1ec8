#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace kestrel {

std::vector<std::string> split(std::string_view s, char sep);
std::string_view trim(std::string_view s);
// Quotes a word for a POSIX shell only when it needs quoting.
std::string shell_quote(std::string_view word);
std::string shell_join(const std::vector<std::string>& words);
// The words with `separator` between them: join({"a", "b"}, ", ") == "a, b".
std::string join(const std::vector<std::string>& words, std::string_view separator);
// Levenshtein distance, for "did you mean" suggestions.
size_t edit_distance(std::string_view a, std::string_view b);
// A size for people: "12.3 MiB".
std::string format_mib(uint64_t bytes);

}  // namespace kestrel
