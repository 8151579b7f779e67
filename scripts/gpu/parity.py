#!/usr/bin/env python3
"""Hugging Face parity fixtures for robometer.cpp's Qwen3-VL reward model.

Builds a tiny random Qwen3-VL (same structure as robometer::model::tiny_qwen3vl_config()) plus
Robometer-style heads, runs HF transformers on real robot frames, and writes:
  <out>/model.safetensors      weights with Robometer's state-dict keys (model.visual.*, ...)
  <out>/config.json            the HF Qwen3VLConfig (parsed by the C++ test)
  <out>/parity_io.safetensors  inputs (ids, mask, pixel values, grids, head positions) and HF
                               outputs (position ids, merged image embeds, DeepStack features,
                               each decoder layer's output, last hidden state, head outputs)
  <out>/meta.json              versions and settings
Nothing is downloaded. Needs torch, transformers (4.57+ or 5.x), safetensors, numpy.
Usage: python3 scripts/gpu/parity.py [out_dir]   (default tests/data/parity)
Runs on CPU in fp32 (a GPU is not needed; float64-free, deterministic).
"""
import inspect
import json
import os
import sys

import numpy as np
import torch
import torch.nn as nn

import transformers
from safetensors.torch import save_file

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
OUT = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "tests", "data", "parity")
FRAMES = os.path.join(ROOT, "tests", "data", "parity")

# Token ids inside the tiny vocabulary (roles as in Qwen3-VL / Robometer).
VISION_START, VISION_END, IMAGE, VIDEO = 150, 151, 152, 153
PROG, PREF, SPLIT, PAD = 154, 155, 156, 0
TEXT_HIDDEN, BINS = 64, 10


def fail(msg):
    print("PARITY FAILED: " + msg, file=sys.stderr)
    sys.exit(1)


def main():
    tv = transformers.__version__
    major = int(tv.split(".")[0])
    print(f"torch {torch.__version__}, transformers {tv}, numpy {np.__version__}, out {OUT}")
    os.makedirs(OUT, exist_ok=True)
    torch.manual_seed(0)
    torch.set_default_dtype(torch.float32)

    from transformers import Qwen3VLConfig, Qwen3VLModel

    rope = {"rope_type": "default", "mrope_section": [2, 3, 3], "mrope_interleaved": True}
    text = dict(vocab_size=160, hidden_size=TEXT_HIDDEN, intermediate_size=96, num_hidden_layers=3,
                num_attention_heads=4, num_key_value_heads=2, head_dim=16, rms_norm_eps=1e-6,
                hidden_act="silu", max_position_embeddings=4096, attention_bias=False,
                tie_word_embeddings=True)
    if major >= 5:
        text["rope_parameters"] = dict(rope, rope_theta=10000.0)
    else:
        text["rope_theta"] = 10000.0
        text["rope_scaling"] = rope
    vision = dict(depth=2, hidden_size=32, intermediate_size=48, num_heads=2, out_hidden_size=TEXT_HIDDEN,
                  num_position_embeddings=16, deepstack_visual_indexes=[0, 1], patch_size=16,
                  temporal_patch_size=2, spatial_merge_size=2, in_channels=3, hidden_act="gelu_pytorch_tanh")
    cfg = Qwen3VLConfig(text_config=text, vision_config=vision, image_token_id=IMAGE, video_token_id=VIDEO,
                        vision_start_token_id=VISION_START, vision_end_token_id=VISION_END,
                        tie_word_embeddings=True)
    try:
        model = Qwen3VLModel._from_config(cfg, attn_implementation="eager")
    except TypeError:
        cfg._attn_implementation = "eager"
        model = Qwen3VLModel(cfg)
    model = model.float().eval()
    print("attn implementation:", getattr(model.config, "_attn_implementation", "?"))

    # The rotary setup must be what we asked for (HF silently defaults mrope_section to [24,20,20]).
    rot = model.language_model.rotary_emb
    sec = getattr(rot, "mrope_section", None)
    if sec is None:
        print("warning: rotary_emb has no mrope_section attribute; relying on the config")
    elif list(sec) != [2, 3, 3]:
        fail(f"mrope_section is {sec}, expected [2, 3, 3]")
    expect_inv = 1.0 / (10000.0 ** (torch.arange(0, 16, 2, dtype=torch.float) / 16))
    if not torch.allclose(rot.inv_freq.float().cpu(), expect_inv):
        fail(f"rope inv_freq {rot.inv_freq} does not match theta 10000")

    # Random weights of a realistic scale everywhere (HF's init leaves norms at 1 / biases at 0).
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.dim() >= 2:
                p.copy_(torch.randn_like(p) / (p[0].numel() ** 0.5))
            elif name.endswith("weight"):
                p.copy_(1.0 + 0.2 * torch.randn_like(p))
            else:
                p.copy_(0.1 * torch.randn_like(p))
        model.visual.pos_embed.weight.normal_(0, 0.5)
        model.language_model.embed_tokens.weight.normal_(0, 1.0)

    def head(out):
        return nn.Sequential(nn.Linear(TEXT_HIDDEN, TEXT_HIDDEN // 2), nn.LayerNorm(TEXT_HIDDEN // 2), nn.GELU(),
                             nn.Dropout(0.1), nn.Linear(TEXT_HIDDEN // 2, out)).eval()

    heads = {"progress_head": head(BINS), "success_head": head(1), "preference_head": head(1)}
    frame_pool_attn = nn.Linear(TEXT_HIDDEN, 1, bias=False)

    # ---- pixels through HF's own image processor (no resize: frames are multiples of 32 px)
    fa = np.load(os.path.join(FRAMES, "frames_a.npy"))  # [3, 64, 64, 3] uint8
    fb = np.load(os.path.join(FRAMES, "frames_b.npy"))  # [3, 64, 96, 3] uint8
    images = [fa[0], fa[1], fa[2], fb[0], fb[1], fb[2]]
    proc = None
    errors = []
    for cls_name in ("Qwen2VLImageProcessor", "Qwen2VLImageProcessorFast"):
        try:
            cls = getattr(transformers, cls_name)
            proc = cls(do_resize=False, patch_size=16, temporal_patch_size=2, merge_size=2,
                       image_mean=[0.5, 0.5, 0.5], image_std=[0.5, 0.5, 0.5])
            enc = proc(images=images, return_tensors="pt")
            print("image processor:", cls_name)
            break
        except Exception as e:  # try the other implementation
            errors.append(f"{cls_name}: {e!r}")
            proc = None
    if proc is None:
        fail("no usable Qwen2VL image processor: " + "; ".join(errors))
    pixel_values = enc["pixel_values"].float()
    grid = enc["image_grid_thw"].long()
    expect_grid = [[1, 4, 4]] * 3 + [[1, 4, 6]] * 3
    if grid.tolist() != expect_grid:
        fail(f"image_grid_thw {grid.tolist()} != {expect_grid}")

    # ---- two prompts: a pair (3 frames A, split, 1 frame B, pref) and a 2-frame single, right-padded
    def image_tokens(g):
        return [VISION_START] + [IMAGE] * (g[1] * g[2] // 4) + [VISION_END]

    s0, prog0 = [11, 12, 13, 14], []
    for i in range(3):
        s0 += [20 + i] + image_tokens(expect_grid[i])
        prog0.append(len(s0))
        s0 += [PROG]
    s0 += [SPLIT, 30] + image_tokens(expect_grid[3])
    s0 += [31, 32]
    pref0 = len(s0)
    s0 += [PREF]
    s1, prog1 = [40, 41], []
    for i in (4, 5):
        s1 += image_tokens(expect_grid[i])
        prog1.append(len(s1))
        s1 += [PROG]
    s1 += [42]
    pref1 = len(s1)
    s1 += [PREF]
    L = max(len(s0), len(s1))
    input_ids = torch.full((2, L), PAD, dtype=torch.long)
    mask = torch.zeros((2, L), dtype=torch.long)
    for b, s in enumerate((s0, s1)):
        input_ids[b, : len(s)] = torch.tensor(s)
        mask[b, : len(s)] = 1
    prog = torch.tensor([prog0, prog1 + [-1]], dtype=torch.long)
    pref = torch.tensor([pref0, pref1], dtype=torch.long)

    # ---- run HF, capturing intermediate tensors with hooks (robust to return-type changes)
    captured = {}

    def keep(name):
        def hook(_m, _inp, out):
            captured[name] = (out[0] if isinstance(out, (tuple, list)) else out).detach().clone()
        return hook

    def keep_positions(_m, args, kwargs):
        pos = kwargs.get("position_ids", args[1] if len(args) > 1 else None)
        captured["position_ids"] = pos.detach().clone()

    hooks = [model.visual.merger.register_forward_hook(keep("image_embeds"))]
    for i, m in enumerate(model.visual.deepstack_merger_list):
        hooks.append(m.register_forward_hook(keep(f"deepstack_{i}")))
    for i, layer in enumerate(model.language_model.layers):
        hooks.append(layer.register_forward_hook(keep(f"layer_{i}")))
    hooks.append(model.language_model.rotary_emb.register_forward_pre_hook(keep_positions, with_kwargs=True))
    kwargs = dict(input_ids=input_ids, attention_mask=mask, pixel_values=pixel_values, image_grid_thw=grid)
    if "mm_token_type_ids" in inspect.signature(model.forward).parameters:
        # transformers >= 5.x computes M-RoPE from token types: text 0, image 1, video 2.
        kwargs["mm_token_type_ids"] = (input_ids == IMAGE).int()
    with torch.no_grad():
        out = model(**kwargs)
        last = out.last_hidden_state if hasattr(out, "last_hidden_state") else out[0]
        g_prog = last.gather(1, prog.clamp(min=0)[..., None].expand(-1, -1, TEXT_HIDDEN))
        progress_logits = heads["progress_head"](g_prog)
        success_logits = heads["success_head"](g_prog).squeeze(-1)
        g_pref = last[torch.arange(2), pref]
        preference_logit = heads["preference_head"](g_pref).squeeze(-1)
        progress = (progress_logits.softmax(-1) * torch.linspace(0, 1, BINS)).sum(-1)
    for h in hooks:
        h.remove()
    for k in ["image_embeds", "deepstack_0", "deepstack_1", "position_ids", "layer_0", "layer_1", "layer_2"]:
        if k not in captured:
            fail(f"hook did not capture {k}")
    pos_ids = captured["position_ids"]
    if pos_ids.dim() == 3 and pos_ids.shape[0] == 4:
        pos_ids = pos_ids[1:]
    if tuple(pos_ids.shape) != (3, 2, L):
        fail(f"position ids shape {tuple(pos_ids.shape)}")

    # ---- write fixtures
    weights = {"model." + k: v.detach().contiguous() for k, v in model.state_dict().items()}
    weights.pop("model.lm_head.weight", None)
    for name, h in heads.items():
        for k, v in h.state_dict().items():
            weights[f"{name}.{k}"] = v.detach().contiguous()
    weights["frame_pool_attn.weight"] = frame_pool_attn.weight.detach().contiguous()
    save_file(weights, os.path.join(OUT, "model.safetensors"))
    cfg.to_json_file(os.path.join(OUT, "config.json"))
    io = {
        "input_ids": input_ids, "attention_mask": mask, "pixel_values": pixel_values, "image_grid_thw": grid,
        "prog_positions": prog, "pref_positions": pref,
        "hf.position_ids": pos_ids.long(), "hf.image_embeds": captured["image_embeds"],
        "hf.deepstack_0": captured["deepstack_0"], "hf.deepstack_1": captured["deepstack_1"],
        "hf.layer_0": captured["layer_0"], "hf.layer_1": captured["layer_1"], "hf.layer_2": captured["layer_2"],
        "hf.last_hidden_state": last, "hf.progress_logits": progress_logits, "hf.progress": progress,
        "hf.success_logits": success_logits, "hf.preference_logit": preference_logit,
    }
    save_file({k: v.detach().contiguous() for k, v in io.items()}, os.path.join(OUT, "parity_io.safetensors"))
    meta = {"torch": torch.__version__, "transformers": tv, "attn_implementation":
            getattr(model.config, "_attn_implementation", None), "dtype": "float32",
            "image_processor": type(proc).__name__, "seq_len": L, "n_images": len(images)}
    with open(os.path.join(OUT, "meta.json"), "w") as f:
        json.dump(meta, f, indent=2)
    total = sum(os.path.getsize(os.path.join(OUT, f)) for f in os.listdir(OUT))
    print(f"wrote {OUT}: {total / 1e6:.2f} MB; last hidden |x|max {last.abs().max():.3f}; "
          f"progress {progress.tolist()}")
    print("PARITY FIXTURES OK")


if __name__ == "__main__":
    main()
