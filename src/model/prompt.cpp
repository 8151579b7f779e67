// Prompt strings copied from Robometer's collator (exact wording matters: the model was trained
// on it) and the Qwen3-VL chat template's rendering of a single user turn.
#include "robometer/model/prompt.h"

namespace robometer::model {

std::string progress_instruction(const std::string& task) {
  return "The task for the robot is '" + task +
         "'. Given the trajectory video, predict the task progress at each frame, how far along the robot "
         "is towards completing the task, a float between 0 and 1, where 0 is the starting state and 1 is "
         "when the task is completed. If the robot is not performing the same task, predict 0 progress.";
}

std::string pair_instruction(const std::string& task, bool predict_pref_progress) {
  std::string s = "Given these two trajectories for the task '" + task +
                  "', evaluate which one makes more progress towards the task. Return A for the first "
                  "trajectory and B for the second trajectory.";
  if (predict_pref_progress)
    s += " Also predict the task progress at each frame of the first trajectory, how far along the robot "
         "is towards completing the task, a float between 0 and 1, where 0 is the starting state and 1 is "
         "when the task is completed. If the robot is not performing the same task, predict 0 progress.";
  return s;
}

std::string render_image(int picture_number, int64_t image_pads) {
  std::string s = "Picture " + std::to_string(picture_number) + ": <|vision_start|>";
  for (int64_t i = 0; i < image_pads; ++i) s += "<|image_pad|>";
  s += "<|vision_end|>";
  return s;
}

std::string progress_frame_text(int picture_number, int64_t image_pads) {
  return render_image(picture_number, image_pads) + "<|prog_token|>";
}

namespace {

constexpr const char* kTurnOpen = "<|im_start|>user\n";
constexpr const char* kTurnClose = "<|im_end|>\n";

// Each frame is an image item followed by a "<|prog_token|>" text item (per-frame progress).
void append_frames(std::string& s, const std::vector<int64_t>& pads, int& picture) {
  for (int64_t n : pads) s += progress_frame_text(++picture, n);
}

std::string user_turn(const std::string& content) { return kTurnOpen + content + kTurnClose; }

}  // namespace

std::string render_progress_prompt(const std::string& task, const std::vector<int64_t>& pads) {
  std::string content = progress_instruction(task);
  int picture = 0;
  append_frames(content, pads, picture);
  return user_turn(content);
}

std::string progress_prompt_head(const std::string& task) { return kTurnOpen + progress_instruction(task); }

std::string progress_prompt_tail() { return kTurnClose; }

std::string render_pair_prompt(const std::string& task, const std::vector<int64_t>& pads_a,
                               const std::vector<int64_t>& pads_b, bool predict_pref_progress) {
  std::string content = pair_instruction(task, predict_pref_progress);
  int picture = 0;  // numbering runs on across both trajectories
  content += "This is Trajectory A. ";
  append_frames(content, pads_a, picture);
  content += "<|split_token|>";
  content += "This is Trajectory B. ";
  append_frames(content, pads_b, picture);
  content += "Now predict the preference between the two trajectories.";
  content += "<|pref_token|>";
  return user_turn(content);
}

}  // namespace robometer::model
