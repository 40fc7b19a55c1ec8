// How the TOML readers (config/file.cpp, image/recipe.cpp,
// topology/spec.cpp) name what they found in their messages, and the reading
// that the file formats of image/recipe.cpp and topology/spec.cpp share.
#pragma once

#include <toml++/toml.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "util/error.hpp"

namespace kestrel::config {

// The line a TOML node starts on.
inline int line_of(const toml::source_region& r) { return static_cast<int>(r.begin.line); }

// "a list", "a string", ...: a TOML type in an error message.
inline const char* toml_type_name(toml::node_type t) {
  switch (t) {
    case toml::node_type::table:
      return "a table";
    case toml::node_type::array:
      return "a list";
    case toml::node_type::string:
      return "a string";
    case toml::node_type::integer:
      return "an integer";
    case toml::node_type::floating_point:
      return "a number";
    case toml::node_type::boolean:
      return "a boolean";
    default:
      return "a date or time";
  }
}

// A table's entries in the order they appear in the file (toml++ keeps them
// sorted by key), so that the first error reported is the first one a reader
// meets.
std::vector<std::pair<const toml::key*, const toml::node*>> in_file_order(const toml::table& table);

// The message for a key a reader does not know, without "PATH:LINE: ":
//   unknown key 'pacakges' (did you mean 'packages'?); the keys are: name, packages, ...
// `where` follows the key (" in [[service]]", or "" at the top level). Inside
// a table, a key of `top_level` gets the hint that it belongs before the
// first [table] instead of a suggestion.
std::string unknown_key_message(std::string_view key, std::span<const std::string_view> known, std::string_view where,
                                std::span<const std::string_view> top_level);

// Reads the values of one TOML file of a format with a fixed set of keys (an
// image recipe, a topology). Every error it throws is an Error
// "PATH:LINE: message", PATH the file as messages name it. A format's reader
// derives from it and adds what only that format has.
class TomlReader {
 public:
  // `top_keys`, the format's top-level keys, must outlive the reader (a
  // constexpr table).
  TomlReader(std::string display, std::span<const std::string_view> top_keys)
      : display_(std::move(display)), top_keys_(top_keys) {}

  // The file as it is named in messages.
  const std::string& display() const { return display_; }

  // The file's root table; a syntax error is thrown at its line.
  toml::table parse(std::string_view text) const;

  [[noreturn]] void error_at(int line, std::string_view message) const;
  [[noreturn]] void error_at(const toml::node& node, std::string_view message) const;

  // An unknown key's error, at its line: see unknown_key_message. `where` is
  // " in [[node]]", or "" at the top level.
  [[noreturn]] void unknown_key(const toml::key& key, std::span<const std::string_view> known,
                                std::string_view where) const;

  // The value of `key`, or an error that names `key` and what it holds instead.
  std::string string_of(const toml::node& node, std::string_view key) const;
  bool bool_of(const toml::node& node, std::string_view key) const;
  int64_t integer_of(const toml::node& node, std::string_view key) const;
  // Each item of a list of strings with its node (for the line of an error).
  std::vector<std::pair<std::string, const toml::node*>> strings_of(const toml::node& node, std::string_view key) const;
  // The tables of an array of tables ([[key]] ... [[key]]).
  std::vector<const toml::table*> tables_of(const toml::node& node, std::string_view key) const;

  // A table's values by the keys of `known`, in its order (nullptr where a
  // key is missing); a key not in `known` is an error `where` the table is.
  template <size_t N>
  std::array<const toml::node*, N> fields_of(const toml::table& table, const std::string_view (&known)[N],
                                             std::string_view where) const {
    std::array<const toml::node*, N> fields{};
    fill_fields(table, known, where, fields);
    return fields;
  }

  // Runs `check`; an Error it throws is thrown again at the node's line.
  template <typename F>
  void checked(const toml::node& node, F&& check) const {
    try {
      check();
    } catch (const Error& e) {
      error_at(node, e.what());
    }
  }

 private:
  void fill_fields(const toml::table& table, std::span<const std::string_view> known, std::string_view where,
                   std::span<const toml::node*> fields) const;

  std::string display_;
  std::span<const std::string_view> top_keys_;
};

}  // namespace kestrel::config
