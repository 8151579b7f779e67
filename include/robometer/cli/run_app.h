// Parsing a CLI11 app and running the chosen command, with one mapping of errors to exit codes
// for both executables (the full `robometer-full` and the front end `robometer`).
#pragma once
#include <CLI/CLI.hpp>

namespace robometer::cli {

// Parses argv (which runs the chosen subcommand's callback) and returns its exit code: the
// callback's `exit_code`, 2 for a usage or ConfigError, 1 for any other error (printed as
// "error: ..." on stderr).
int run_app(CLI::App& app, int argc, char** argv, const int& exit_code);

}  // namespace robometer::cli
