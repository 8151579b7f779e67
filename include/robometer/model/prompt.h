// Robometer's prompt text (robometer/data/collators/rbm_heads.py) rendered through the
// Qwen3-VL chat template with add_vision_id=True, one user turn, add_generation_prompt=False:
//   <|im_start|>user\n{instruction}Picture 1:
//   <|vision_start|><|image_pad|>...<|vision_end|><|prog_token|>...<|im_end|>\n
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace robometer::model {

// "The task for the robot is '<task>'. Given the trajectory video, predict ..." (progress query).
std::string progress_instruction(const std::string& task);
// "Given these two trajectories for the task '<task>', evaluate ..."; with
// predict_pref_progress the sentence asking for A's per-frame progress is appended.
std::string pair_instruction(const std::string& task, bool predict_pref_progress);

// One image as the template renders it, with its <|image_pad|> repeated `image_pads` times
// (1 = the template's own output, before the processor expands it).
std::string render_image(int picture_number, int64_t image_pads);

// The progress prompt cut at its frames, for streaming: render_progress_prompt(task, pads) ==
// progress_prompt_head(task) + Σ_i progress_frame_text(i + 1, pads[i]) + progress_prompt_tail().
std::string progress_prompt_head(const std::string& task);
std::string progress_frame_text(int picture_number, int64_t image_pads);
std::string progress_prompt_tail();

// Full prompts. `pads[i]` is the number of <|image_pad|> tokens of frame i.
std::string render_progress_prompt(const std::string& task, const std::vector<int64_t>& pads);
std::string render_pair_prompt(const std::string& task, const std::vector<int64_t>& pads_a,
                               const std::vector<int64_t>& pads_b, bool predict_pref_progress);

}  // namespace robometer::model
