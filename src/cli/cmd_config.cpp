// `robometer config print|validate CONFIG [key=value ...]`
#include <cstdio>

#include "robometer/cli/command.h"
#include "robometer/config/loader.h"

namespace robometer::cli {
namespace {

struct ConfigArgs {
  std::string path;
  std::vector<std::string> overrides;
};

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
                  const auto r = config::load_run_config(print_args.path, print_args.overrides);
                  std::fputs(config::to_yaml(r.config).c_str(), stdout);
                  exit_code = 0;
                });
                auto* validate = sub.add_subcommand("validate", "Check a config; exit 2 with file:line on error");
                add_args(*validate, validate_args);
                validate->callback([&exit_code] {
                  const auto r = config::load_run_config(validate_args.path, validate_args.overrides);
                  std::printf("%s: ok (%zu file(s): ", validate_args.path.c_str(), r.files.size());
                  for (size_t i = 0; i < r.files.size(); ++i)
                    std::printf("%s%s", i ? ", " : "", r.files[i].c_str());
                  std::printf(")\n");
                  exit_code = 0;
                });
              });

}  // namespace
}  // namespace robometer::cli
