// `robometer config print|validate CONFIG [key=value ...]`
#include <cstdio>

#include "robometer/cli/command.h"
#include "robometer/config/loader.h"

namespace robometer::cli {
namespace {

struct ConfigArgs {
  std::string path;
  std::vector<std::string> overrides;
  bool strict = false;
};

// Missing data paths are normal before `scripts/demo` has rendered its data: warn, don't fail.
void warn_missing(const config::LoadResult& r) {
  for (const auto& m : r.missing_paths) std::fprintf(stderr, "warning: %s\n", m.c_str());
}

void add_args(CLI::App& sub, ConfigArgs& a) {
  sub.add_option("config", a.path, "YAML config file")->required();
  sub.add_option("overrides", a.overrides, "key.sub=value overrides, applied in order");
}

Registrar reg("config", "Print or validate a YAML config (defaults and overrides applied)",
              [](CLI::App& sub, int& exit_code) {
                sub.require_subcommand(1);
                static ConfigArgs print_args, validate_args;
                auto* print = sub.add_subcommand("print", "Print the resolved config as YAML");
                add_args(*print, print_args);
                print->callback([&exit_code] {
                  const auto r = config::load_run_config(print_args.path, print_args.overrides,
                                                         config::MissingPaths::Warn);
                  warn_missing(r);
                  std::fputs(config::to_yaml(r.config).c_str(), stdout);
                  exit_code = 0;
                });
                auto* validate =
                    sub.add_subcommand("validate", "Check a config; exit 2 with file:line on error");
                add_args(*validate, validate_args);
                validate->add_flag("--strict", validate_args.strict,
                                   "Fail (exit 2) when a data path does not exist");
                validate->callback([&exit_code] {
                  const auto r = config::load_run_config(
                      validate_args.path, validate_args.overrides,
                      validate_args.strict ? config::MissingPaths::Error : config::MissingPaths::Warn);
                  warn_missing(r);
                  std::printf("%s: ok%s (%zu file(s): ", validate_args.path.c_str(),
                              r.missing_paths.empty() ? "" : " with warnings", r.files.size());
                  for (size_t i = 0; i < r.files.size(); ++i)
                    std::printf("%s%s", i ? ", " : "", r.files[i].c_str());
                  std::printf(")\n");
                  exit_code = 0;
                });
              });

}  // namespace
}  // namespace robometer::cli
