#!/usr/bin/env python3
"""A client of the original robometer eval server API (robometer/evals/eval_server.py).

It builds its requests the way the original's client code does -- scripts/example_inference.py
(make_progress_sample, build_multipart_payload, post_evaluate_batch_npy) and
robometer/evals/eval_utils.py (build_payload + post_batch_npy for pydantic samples, post_batch for
JSON) -- re-written here with Debian's python3-requests and numpy only, and checks every number
the compat endpoints return against robometer's own POST /score on the same frames.

Usage: original_client.py --url http://127.0.0.1:PORT --frames-a A.npy --frames-b B.npy --out OUT.json
Exit status 0 when every check passed; the first mismatch is printed and exits 1.
"""
from __future__ import annotations

import argparse
import base64
import io
import json
import sys

import numpy as np
import requests

TOL = 1e-5
NUM_SUBSAMPLED_FRAMES = 4  # eval_server.py
checks = 0


def fail(msg: str) -> None:
    print("FAIL: " + msg)
    sys.exit(1)


def close(got, want, what: str) -> None:
    global checks
    got, want = np.asarray(got, dtype=np.float64), np.asarray(want, dtype=np.float64)
    if got.shape != want.shape:
        fail(f"{what}: shape {got.shape} != {want.shape}")
    if not np.allclose(got, want, atol=TOL, rtol=0):
        fail(f"{what}: {got.tolist()} != {want.tolist()}")
    checks += 1


# ---------------------------------------------------------------- as scripts/example_inference.py

def numpy_to_npy_file_tuple(arr: np.ndarray, filename: str):
    buf = io.BytesIO()
    np.save(buf, arr)
    buf.seek(0)
    return (filename, buf, "application/octet-stream")


def build_multipart_payload(samples):
    files, data = {}, {}
    for i, sample in enumerate(samples):
        sample_copy = json.loads(json.dumps(sample, default=str))
        traj = sample.get("trajectory", {})
        traj_copy = sample_copy.get("trajectory", {})
        for field in ["frames", "lang_vector", "video_embeddings"]:
            val = traj.get(field, None)
            if val is None:
                continue
            if isinstance(val, np.ndarray):
                file_key = f"sample_{i}_trajectory_{field}"
                files[file_key] = numpy_to_npy_file_tuple(val, f"{file_key}.npy")
                traj_copy[field] = {"__numpy_file__": file_key}
            else:
                traj_copy[field] = val
        if "frames_shape" in traj_copy and isinstance(traj_copy["frames_shape"], (tuple, list)):
            traj_copy["frames_shape"] = [int(x) for x in traj_copy["frames_shape"]]
        sample_copy["trajectory"] = traj_copy
        data[f"sample_{i}"] = json.dumps(sample_copy)
    return files, data


def post_evaluate_batch_npy(url, samples, use_frame_steps=False, timeout_s=120.0):
    files, data = build_multipart_payload(samples)
    data["use_frame_steps"] = "true" if use_frame_steps else "false"
    resp = requests.post(url.rstrip("/") + "/evaluate_batch_npy", files=files, data=data, timeout=timeout_s)
    resp.raise_for_status()
    return resp.json()


def make_progress_sample(frames, task, sample_id, subsequence_length):
    return {
        "sample_type": "progress",
        "trajectory": {
            "frames": frames,
            "frames_shape": tuple(frames.shape),
            "task": task,
            "id": sample_id,
            "metadata": {"subsequence_length": int(subsequence_length)},
            "video_embeddings": None,
        },
    }


def extract_rewards_from_server_output(outputs):
    progress_pred = outputs["outputs_progress"].get("progress_pred", [])
    progress = np.array(progress_pred[0], dtype=np.float32) if progress_pred else np.array([], dtype=np.float32)
    outputs_success = outputs.get("outputs_success", {})
    success_probs = outputs_success.get("success_probs", []) if outputs_success else []
    success = np.array(success_probs[0], dtype=np.float32) if success_probs else np.array([], dtype=np.float32)
    return progress, success


# ---------------------------------------------------------------- as robometer/evals/eval_utils.py

def trajectory_dump(frames, task):
    """Trajectory(...).model_dump(): every field of the pydantic model."""
    return {
        "frames": frames, "frames_shape": tuple(frames.shape), "embeddings_path": None, "video_embeddings": None,
        "text_embedding": None, "id": None, "task": task, "lang_vector": None, "data_source": None,
        "quality_label": None, "is_robot": None, "target_progress": None, "partial_success": None,
        "success_label": None, "predict_last_frame_mask": None, "metadata": None, "data_gen_strategy": None,
    }


def build_payload(dumped_samples):
    files, sample_data = {}, []
    for sample_idx, sample in enumerate(dumped_samples):
        processed = sample.copy()
        for key in ["chosen_trajectory", "rejected_trajectory", "trajectory"]:
            if key in processed and isinstance(processed[key], dict):
                trajectory = dict(processed[key])
                for field_name in ["frames", "lang_vector", "video_embeddings", "text_embedding"]:
                    if field_name in trajectory and isinstance(trajectory[field_name], np.ndarray):
                        buf = io.BytesIO()
                        np.save(buf, trajectory[field_name])
                        buf.seek(0)
                        file_key = f"sample_{sample_idx}_{key}_{field_name}"
                        files[file_key] = (f"{file_key}.npy", buf, "application/octet-stream")
                        trajectory[field_name] = {"__numpy_file__": file_key}
                processed[key] = trajectory
        sample_data.append(processed)
    return files, sample_data


def post_batch_npy(url, files, sample_data, timeout_s=120.0):
    data = {f"sample_{i}": json.dumps(sample) for i, sample in enumerate(sample_data)}
    resp = requests.post(url.rstrip("/") + "/evaluate_batch_npy", files=files, data=data, timeout=timeout_s)
    resp.raise_for_status()
    return resp.json()


def post_batch(url, payload, timeout_s=120.0):
    resp = requests.post(url.rstrip("/") + "/evaluate_batch", json=payload, timeout=timeout_s)
    resp.raise_for_status()
    return resp.json()


# ---------------------------------------------------------------- robometer's own API

def score_all(url, frames, task):
    """POST /score in mode "all": one query over exactly these frames."""
    body = {"task": task, "frames": base64.b64encode(np.ascontiguousarray(frames).tobytes()).decode(),
            "shape": list(frames.shape), "mode": "all"}
    resp = requests.post(url.rstrip("/") + "/score", json=body, timeout=120)
    resp.raise_for_status()
    out = resp.json()
    return np.array(out["progress"]), np.array(out["success"])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--url", required=True)
    ap.add_argument("--frames-a", required=True)
    ap.add_argument("--frames-b", required=True)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    url = args.url
    a = np.load(args.frames_a)
    b = np.load(args.frames_b)
    if a.dtype != np.uint8 or a.ndim != 4 or b.ndim != 4:
        fail(f"unexpected test frames {a.dtype} {a.shape} / {b.shape}")
    task = "put the red block in the bowl"

    # 1. example_inference.compute_rewards_per_frame without frame steps: one query, all frames.
    want_p, want_s = score_all(url, a, task)
    out = post_evaluate_batch_npy(url, [make_progress_sample(a, task, "0", a.shape[0])], use_frame_steps=False)
    if out.get("outputs_preference") is not None:
        fail("outputs_preference should be null for progress-only batches")
    got_p, got_s = extract_rewards_from_server_output(out)
    close(got_p, want_p, "npy progress")
    close(got_s, want_s, "npy success")

    # The same frames as float32 and in Fortran order (np.save writes both as they are).
    for variant, arr in (("float32", a.astype(np.float32)), ("fortran", np.asfortranarray(a))):
        out = post_evaluate_batch_npy(url, [make_progress_sample(arr, task, "0", a.shape[0])])
        got_p, _ = extract_rewards_from_server_output(out)
        close(got_p, want_p, f"npy progress ({variant})")

    # 2. With frame steps: frame t is the last prediction on frames[np.linspace(0, t, 4, dtype=int)].
    out = post_evaluate_batch_npy(url, [make_progress_sample(a, task, "0", a.shape[0])], use_frame_steps=True)
    got_p, got_s = extract_rewards_from_server_output(out)
    step_p, step_s = [], []
    for t in range(a.shape[0]):
        idx = np.linspace(0, t, NUM_SUBSAMPLED_FRAMES, dtype=int)
        p, s = score_all(url, a[idx], task)
        step_p.append(p[-1])
        step_s.append(s[-1])
    close(got_p, step_p, "frame-step progress")
    close(got_s, step_s, "frame-step success")

    # 3. eval_utils.build_payload + post_batch_npy: a preference and a progress sample together.
    pref = {"chosen_trajectory": trajectory_dump(a, task), "rejected_trajectory": trajectory_dump(b, task),
            "sample_type": "preference", "data_gen_strategy": None, "resample_attempts": 1}
    prog = {"trajectory": trajectory_dump(b, task), "sample_type": "progress", "data_gen_strategy": None,
            "resample_attempts": 1}
    files, sample_data = build_payload([pref, prog])
    out = post_batch_npy(url, files, sample_data)
    want_bp, want_bs = score_all(url, b, task)
    close(out["outputs_progress"]["progress_pred"][0], want_bp, "mixed batch progress")
    close(out["outputs_success"]["success_probs"][0], want_bs, "mixed batch success")
    op = out["outputs_preference"]
    probs = op["prediction_probs"]
    if len(probs) != 1 or op["predictions"] != [1 if probs[0] > 0.5 else 0] or op["preference_labels"] != [1.0]:
        fail(f"outputs_preference: {op}")

    # 4. eval_utils.post_batch (JSON): frames as nested lists, the samples wrapper.
    prog_json = make_progress_sample(a, task, "0", a.shape[0])
    prog_json["trajectory"]["frames"] = a.tolist()
    out = post_batch(url, {"samples": [prog_json], "use_frame_steps": False})
    close(out["outputs_progress"]["progress_pred"][0], want_p, "JSON progress")

    # 5. /model_info and /gpu_status carry the original's fields.
    info = requests.get(url + "/model_info", timeout=30).json()
    for k in ("model_path", "num_gpus", "experiment_config", "model_architecture"):
        if k not in info:
            fail(f"/model_info lacks {k}: {sorted(info)}")
    arch = info["model_architecture"]
    if arch["total_parameters"] <= 0 or arch["trainable_parameters"] + arch["frozen_parameters"] != arch["total_parameters"]:
        fail(f"/model_info parameters: {arch}")
    if "model" not in info["experiment_config"]:
        fail(f"/model_info experiment_config lacks model: {sorted(info['experiment_config'])}")
    gpu = requests.get(url + "/gpu_status", timeout=30).json()
    for k in ("total_gpus", "available_gpus", "max_workers", "gpu_stats", "pool_size"):
        if k not in gpu:
            fail(f"/gpu_status lacks {k}: {sorted(gpu)}")
    if gpu["gpu_stats"]["0"]["total_requests"] < 5:
        fail(f"/gpu_status total_requests: {gpu}")

    with open(args.out, "w") as f:
        json.dump({"preference_prob": probs[0], "checks": checks}, f)
    print(f"original_client: {checks} checks passed")


if __name__ == "__main__":
    main()
