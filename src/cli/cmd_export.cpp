// `robometer export --checkpoint DIR --out DIR [--merge-lora] [--peft-base model|for-conditional-generation]
// [--dtype bf16|fp32] [--shard-size 5GB] [--force]` A directory Robometer's Python loaders and LeRobot's port
// can read (layout: export/export.h).
#include <cstdio>

#include "robometer/cli/command.h"
#include "robometer/export/export.h"

namespace robometer::cli {
namespace {

struct ExportArgs {
  std::string checkpoint, out, dtype = "fp32", shard_size = "5GB", base_model_id, peft_base = "model";
  bool merge_lora = false;
  bool force = false;
};

int run_export(const ExportArgs& a) {
  eval::ExportOptions o;
  o.merge_lora = a.merge_lora;
  o.dtype = a.dtype;
  o.shard_bytes = eval::parse_size(a.shard_size);
  if (!a.base_model_id.empty()) o.base_model_id = a.base_model_id;
  o.force = a.force;
  o.peft_base = a.peft_base;
  const auto summary = eval::export_model(a.checkpoint, a.out, o);
  std::printf("%s\n", summary.dump(2).c_str());
  return 0;
}

Registrar reg("export", "Export a checkpoint as Robometer/HF safetensors (+ PEFT adapter)",
              [](CLI::App& sub, int& exit_code) {
                static ExportArgs a;
                sub.add_option("--checkpoint", a.checkpoint, "checkpoint or export directory")->required();
                sub.add_option("--out", a.out, "output directory")->required();
                sub.add_flag("--merge-lora", a.merge_lora, "fold LoRA adapters into the weights");
                sub.add_option("--peft-base", a.peft_base,
                               "module the PEFT adapter keys are named for: model (Qwen3VLModel, the "
                               "original's load path) or for-conditional-generation")
                    ->check(CLI::IsMember({"model", "for-conditional-generation"}))
                    ->capture_default_str();
                sub.add_flag("--force", a.force, "replace the contents of a non-empty --out");
                sub.add_option("--dtype", a.dtype, "fp32 | bf16");
                sub.add_option("--shard-size", a.shard_size, "max shard size, e.g. 5GB, 200MB");
                sub.add_option("--base-model-id", a.base_model_id,
                               "recorded as model.base_model_id / base_model_name_or_path");
                sub.callback([&exit_code] { exit_code = run_export(a); });
              });

}  // namespace
}  // namespace robometer::cli
