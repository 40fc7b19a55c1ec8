// Command-line options derived from the configuration table: every key with
// a `kestrel run` option (config/keys.cpp) becomes an option of the same
// name, with its help text and validation from the table. The command line
// is the highest layer of the configuration.
#pragma once

#include <CLI/CLI.hpp>
#include <deque>
#include <string>
#include <vector>

#include "config/config.hpp"

namespace kestrel::cli {

class ConfigOptions {
 public:
  // Adds the options to `app`; they must outlive its parse().
  explicit ConfigOptions(CLI::App& app);
  ConfigOptions(const ConfigOptions&) = delete;
  ConfigOptions& operator=(const ConfigOptions&) = delete;

  // Sets what was given on the command line in `config`.
  void apply(config::Config& config) const;

 private:
  struct Bound {
    const config::Key* key;
    CLI::Option* option = nullptr;
    std::vector<std::string> values;  // one per occurrence
    bool flag = false;
  };
  std::deque<Bound> bound_;  // stable addresses: CLI11 writes into them
};

// The configuration for a command that takes the run options: loaded from
// files and environment, then the command line applied.
config::Config load_config(const ConfigOptions& options);

}  // namespace kestrel::cli
