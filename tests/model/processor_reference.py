#!/usr/bin/env python3
"""Reference for the C++ image preprocessing: the code path Robometer runs through
qwen_vl_utils.fetch_image (smart_resize, factor 32, PIL Image.resize with its default BICUBIC)
and HF's Qwen2-VL image processor with do_resize=False (rescale/normalise, temporal
duplication, reshape/transpose flattening), rewritten with numpy + Pillow only.

usage: processor_reference.py VIDEO FRAME_INDEX OUT_DIR
       processor_reference.py --synthetic HEIGHT WIDTH SEED OUT_DIR   (seeded noise + gradients)
Writes OUT_DIR/frame.u8 (decoded RGB frame), OUT_DIR/resized.u8 (after PIL resize),
OUT_DIR/pixel_values.f32 (float32 [N, 1536]) and OUT_DIR/meta.json (shapes, grid_thw).
"""
import json
import math
import os
import sys

import av
import numpy as np
from PIL import Image

PATCH, MERGE, TEMPORAL = 16, 2, 2
FACTOR = PATCH * MERGE
MIN_PIXELS, MAX_PIXELS = 4 * FACTOR * FACTOR, 16384 * FACTOR * FACTOR
MEAN = STD = np.array([0.5, 0.5, 0.5], dtype=np.float32)


def smart_resize(height, width):
    h_bar = max(FACTOR, round(height / FACTOR) * FACTOR)
    w_bar = max(FACTOR, round(width / FACTOR) * FACTOR)
    if h_bar * w_bar > MAX_PIXELS:
        beta = math.sqrt((height * width) / MAX_PIXELS)
        h_bar = math.floor(height / beta / FACTOR) * FACTOR
        w_bar = math.floor(width / beta / FACTOR) * FACTOR
    elif h_bar * w_bar < MIN_PIXELS:
        beta = math.sqrt(MIN_PIXELS / (height * width))
        h_bar = math.ceil(height * beta / FACTOR) * FACTOR
        w_bar = math.ceil(width * beta / FACTOR) * FACTOR
    return h_bar, w_bar


def decode_frame(path, index):
    with av.open(path) as container:
        for i, frame in enumerate(container.decode(video=0)):
            if i == index:
                return frame.to_ndarray(format="rgb24")
    raise SystemExit(f"{path}: no frame {index}")


def synthetic_frame(height, width, seed):
    rng = np.random.RandomState(seed)
    yy, xx = np.mgrid[0:height, 0:width]
    base = np.stack([xx * 255 // max(width - 1, 1), yy * 255 // max(height - 1, 1), (xx + yy) % 256], axis=-1)
    noise = rng.randint(-60, 61, size=(height, width, 3))
    edges = ((xx // 7 + yy // 5) % 2 * 255)[..., None]  # hard edges exercise clipping
    return np.clip(base + noise + edges * (rng.rand(height, width, 1) < 0.2), 0, 255).astype(np.uint8)


def main():
    if sys.argv[1] == "--synthetic":
        frame = synthetic_frame(int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]))
        out = sys.argv[5]
    else:
        video, index, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
        frame = decode_frame(video, index)
    image = Image.fromarray(frame).convert("RGB")
    h, w = smart_resize(image.height, image.width)
    resized = np.asarray(image.resize((w, h)))  # Pillow's default filter is BICUBIC

    x = resized.astype(np.float32) * np.float32(1 / 255)
    x = (x - MEAN) / STD
    patches = x.transpose(2, 0, 1)[np.newaxis]  # [1, C, H, W]
    patches = np.tile(patches, (TEMPORAL, 1, 1, 1))
    gt, gh, gw = 1, h // PATCH, w // PATCH
    patches = patches.reshape(gt, TEMPORAL, 3, gh // MERGE, MERGE, PATCH, gw // MERGE, MERGE, PATCH)
    patches = patches.transpose(0, 3, 6, 4, 7, 2, 1, 5, 8)
    flat = np.ascontiguousarray(patches.reshape(gt * gh * gw, 3 * TEMPORAL * PATCH * PATCH), dtype=np.float32)

    frame.tofile(os.path.join(out, "frame.u8"))
    resized.tofile(os.path.join(out, "resized.u8"))
    flat.tofile(os.path.join(out, "pixel_values.f32"))
    with open(os.path.join(out, "meta.json"), "w") as f:
        json.dump({"frame": list(frame.shape), "resized": list(resized.shape), "pixel_values": list(flat.shape),
                   "grid_thw": [gt, gh, gw]}, f)


if __name__ == "__main__":
    main()
