#!/usr/bin/env python3
"""The baseline for `robometer bench model-step`: one training step of HF transformers'
Qwen3-VL (PyTorch) on the same shapes, timed the same way.

Same config (configs/models/qwen3vl_4b.json, random init), bf16 parameters, SDPA attention,
gradient checkpointing, vision tower frozen, AdamW (fused) over the rest. The batch has the
token and patch counts that our processor produced (bench model-step prints them on its
HF_SHAPES line): `pairs` sequences of `seq_len` tokens, each holding `images_per_seq` images of
grid (1, grid_h, grid_w) patches laid out as <vision_start> <image_pad>*n <vision_end>, the rest
random text. The model is Qwen3VLModel (no LM head, as the reward model has none) plus a small
linear head on the last tokens standing in for the three reward heads.

Prints `RESULT hf-step: step S s ...` and writes --json. Never raises: errors are printed and
the exit code is 1.
"""
import argparse
import json
import statistics
import sys
import time
import traceback


def build_config(path):
    from transformers import Qwen3VLConfig

    raw = json.load(open(path))
    raw.pop("robometer", None)
    text = dict(raw.get("text_config", {}))
    # transformers 5.x names the RoPE settings rope_parameters (rope_theta inside); 4.x used
    # rope_scaling + rope_theta. Give both so either version reads the same values.
    rs = text.get("rope_scaling") or {}
    if "rope_parameters" not in text:
        rp = {"rope_type": rs.get("rope_type", "default"), "rope_theta": text.get("rope_theta", 5000000)}
        for k in ("mrope_section", "mrope_interleaved"):
            if k in rs:
                rp[k] = rs[k]
        text["rope_parameters"] = rp
    text["use_cache"] = False  # training: no KV cache
    raw["text_config"] = text
    return Qwen3VLConfig(**raw)


def make_model(cfg, torch):
    from transformers import Qwen3VLModel

    cfg._attn_implementation = "sdpa"
    try:
        cfg.text_config._attn_implementation = "sdpa"
        cfg.vision_config._attn_implementation = "sdpa"
    except Exception:
        pass
    torch.set_default_dtype(torch.bfloat16)
    # Allocate and initialise on the GPU (a CPU init of 4B parameters takes minutes).
    with torch.device("cuda"):
        try:
            model = Qwen3VLModel._from_config(cfg, attn_implementation="sdpa", dtype=torch.bfloat16)
        except TypeError:
            model = Qwen3VLModel._from_config(cfg, attn_implementation="sdpa", torch_dtype=torch.bfloat16)
    torch.set_default_dtype(torch.float32)
    return model.to(device="cuda", dtype=torch.bfloat16)


def make_batch(a, cfg, torch):
    g = torch.Generator().manual_seed(0)
    merge = cfg.vision_config.spatial_merge_size
    per_image = (a.grid_h // merge) * (a.grid_w // merge)
    per_seq = a.tokens // a.pairs
    block = a.images_per_seq * (per_image + 2)
    text = per_seq - block
    if text < 2 or per_seq > a.seq_len:
        raise ValueError(f"inconsistent shapes: {per_seq} tokens per sequence, {block} in image blocks, "
                         f"seq_len {a.seq_len}")
    pad_id = cfg.text_config.pad_token_id if getattr(cfg.text_config, "pad_token_id", None) is not None else 151643
    ids = torch.full((a.pairs, a.seq_len), pad_id, dtype=torch.long)
    mask = torch.zeros((a.pairs, a.seq_len), dtype=torch.long)
    for b in range(a.pairs):
        row = []
        head = text // 2
        row += torch.randint(0, 151000, (head,), generator=g).tolist()
        for _ in range(a.images_per_seq):
            row += [cfg.vision_start_token_id] + [cfg.image_token_id] * per_image + [cfg.vision_end_token_id]
        row += torch.randint(0, 151000, (text - head,), generator=g).tolist()
        ids[b, : len(row)] = torch.tensor(row)
        mask[b, : len(row)] = 1
    n_images = a.pairs * a.images_per_seq
    grid = torch.tensor([[1, a.grid_h, a.grid_w]] * n_images, dtype=torch.long)
    patch_dim = 3 * cfg.vision_config.temporal_patch_size * cfg.vision_config.patch_size ** 2
    pixels = torch.randn((n_images * a.grid_h * a.grid_w, patch_dim), generator=g)
    return (ids.cuda(), mask.cuda(), pixels.to(device="cuda", dtype=torch.bfloat16), grid.cuda())


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--config", default="configs/models/qwen3vl_4b.json")
    p.add_argument("--pairs", type=int, required=True)
    p.add_argument("--images-per-seq", type=int, required=True)
    p.add_argument("--seq-len", type=int, required=True)
    p.add_argument("--tokens", type=int, required=True, help="non-pad tokens in the batch")
    p.add_argument("--grid-h", type=int, required=True)
    p.add_argument("--grid-w", type=int, required=True)
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--no-checkpointing", action="store_true")
    p.add_argument("--json", default="")
    a = p.parse_args()

    import torch
    import transformers

    print(f"hf-step: torch {torch.__version__}, transformers {transformers.__version__}, "
          f"{torch.cuda.get_device_name(0)}", flush=True)
    cfg = build_config(a.config)
    t0 = time.perf_counter()
    model = make_model(cfg, torch)
    model.visual.requires_grad_(False)
    model.train()
    if not a.no_checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    hidden = cfg.text_config.hidden_size
    head = torch.nn.Linear(hidden, 12, device="cuda", dtype=torch.bfloat16)
    params = [q for q in model.parameters() if q.requires_grad] + list(head.parameters())
    try:
        opt = torch.optim.AdamW(params, lr=2e-5, weight_decay=0.01, fused=True)
        opt_kind = "fused"
    except Exception:
        opt = torch.optim.AdamW(params, lr=2e-5, weight_decay=0.01, foreach=True)
        opt_kind = "foreach"
    torch.cuda.synchronize()
    n_train = sum(q.numel() for q in params)
    n_total = sum(q.numel() for q in model.parameters())
    print(f"hf-step: built in {time.perf_counter() - t0:.1f} s; {n_total / 1e6:.1f} M params, "
          f"{n_train / 1e6:.1f} M trainable; AdamW {opt_kind}; checkpointing {not a.no_checkpointing}", flush=True)

    ids, mask, pixels, grid = make_batch(a, cfg, torch)
    print(f"hf-step: input_ids {tuple(ids.shape)}, tokens {int(mask.sum())}, pixel patches {pixels.shape[0]}, "
          f"images {grid.shape[0]}", flush=True)

    kwargs = dict(input_ids=ids, attention_mask=mask, pixel_values=pixels, image_grid_thw=grid, use_cache=False)
    # transformers >= 5 computes M-RoPE from mm_token_type_ids (1 at image tokens), as its processor returns.
    import inspect
    if "mm_token_type_ids" in inspect.signature(model.forward).parameters:
        kwargs["mm_token_type_ids"] = (ids == cfg.image_token_id).int()

    def step():
        opt.zero_grad(set_to_none=True)
        out = model(**kwargs)
        h = out.last_hidden_state[:, -17:]
        loss = head(h).float().square().mean()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 10.0)
        opt.step()
        return float(loss.detach())

    for i in range(a.warmup):
        t = time.perf_counter()
        loss = step()
        torch.cuda.synchronize()
        print(f"hf warm-up {i + 1}: {time.perf_counter() - t:.3f} s, loss {loss:.4f}", flush=True)
    torch.cuda.reset_peak_memory_stats()
    times = []
    for i in range(a.steps):
        torch.cuda.synchronize()
        t = time.perf_counter()
        loss = step()
        torch.cuda.synchronize()
        times.append(time.perf_counter() - t)
        print(f"hf step {i + 1}: {times[-1]:.3f} s, loss {loss:.4f}", flush=True)
    med = statistics.median(times)
    peak = torch.cuda.max_memory_allocated() / 2 ** 30
    tokens = int(mask.sum())
    print(f"RESULT hf-step: step {med:.3f} s (median of {a.steps}), {a.pairs / med:.2f} samples/s, "
          f"{tokens / med:.0f} tokens/s, peak memory {peak:.2f} GiB allocated", flush=True)
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"step_s_median": med, "step_s_all": times, "samples_per_s": a.pairs / med,
                       "tokens_per_s": tokens / med, "peak_alloc_gib": peak, "tokens": tokens,
                       "pixel_patches": int(pixels.shape[0]), "params_trainable": n_train,
                       "optimizer": opt_kind, "torch": torch.__version__,
                       "transformers": transformers.__version__}, f, indent=2)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except Exception:
        traceback.print_exc()
        print("RESULT hf-step: FAILED (see the traceback above)", flush=True)
        sys.exit(1)
