// The HTTP API of the original robometer/evals/eval_server.py, so that its clients
// (scripts/example_inference.py, robometer/evals/eval_utils.py post_batch / post_batch_npy,
// RL reward wrappers) work against `robometer serve` unchanged:
//
//   POST /evaluate_batch      {"samples": [sample, ...], "use_frame_steps": bool}
//   POST /evaluate_batch_npy  multipart: fields sample_0, sample_1, ... (sample JSON whose arrays
//                             are {"__numpy_file__": KEY}), files KEY (.npy), use_frame_steps
//                             ("true"/"false")
//      sample = {"sample_type": "progress", "trajectory": {"frames": ..., "task": ...}}
//             | {"sample_type": "preference", "chosen_trajectory": {...}, "rejected_trajectory": {...}}
//      -> {"outputs_progress": {"progress_pred": [[...] per progress sample]} | null,
//          "outputs_success": {"success_probs": [[...] per progress sample]} | null,
//          "outputs_preference": {"predictions": [0|1], "prediction_probs": [P(chosen ≻ rejected)],
//                                 "preference_labels": [1.0, ...]} | null}
//      A progress sample is one query over all its frames; with use_frame_steps, frame t gets
//      the last prediction of the prefix 0..t subsampled to 4 frames (np.linspace(0, t, 4,
//      dtype=int)), as the original does. Frames in /evaluate_batch are nested lists [T][H][W][3].
//   GET /model_info, GET /gpu_status: the original's fields for our one model replica.
//
// Every size goes through the same request budget as /score (serve/request_limits.h).
#pragma once
#include <cstdint>
#include <vector>

#include "robometer/serve/route_context.h"

namespace robometer::serve {

// np.linspace(0, t, 4, dtype=int): the frames of the prefix 0..t that a frame step scores.
std::vector<int64_t> frame_step_positions(int64_t t);

}  // namespace robometer::serve
