// CLI11 glue shared by the subcommands.
#pragma once

#include <CLI/CLI.hpp>

#include "cli/commands.hpp"

namespace kestrel::cli {

// Parses args into app. Returns false if --help was handled (the caller
// returns 0); throws CLI::ParseError for bad input.
inline bool parse(CLI::App& app, const Args& args) {
  std::vector<std::string> reversed(args.rbegin(), args.rend());  // CLI11 wants them backwards
  try {
    app.parse(reversed);
  } catch (const CLI::CallForHelp&) {
    std::fputs(app.help().c_str(), stdout);
    return false;
  } catch (const CLI::CallForAllHelp&) {
    std::fputs(app.help("", CLI::AppFormatMode::All).c_str(), stdout);
    return false;
  }
  return true;
}

}  // namespace kestrel::cli
