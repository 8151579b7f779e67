#!/usr/bin/env python3
"""Which SDPA backend torch picks for our text and vision attention shapes (GPU machine).

Reads the shapes `bench model-step` wrote (--bench JSON) and the model config, and for each call
our C++ makes (text: causal with native GQA, or a padding mask with K/V repeated; vision: one
batched call per frame) prints the backend torch's dispatcher chooses (torch._fused_sdp_choice)
and which backends can run it at all. Writes --json. Never raises: errors are printed.
"""
import argparse
import json
import sys
import traceback


def probe(torch, name, q, k, v, mask, causal, gqa):
    out = {"call": name, "shape_q": list(q.shape), "shape_k": list(k.shape), "causal": causal,
           "mask": mask is not None, "gqa": gqa}
    try:
        from torch.nn.attention import SDPBackend, sdpa_kernel
    except Exception:  # torch < 2.3
        SDPBackend, sdpa_kernel = None, None
    kw = {"enable_gqa": True} if gqa else {}
    try:
        choice = torch._fused_sdp_choice(q, k, v, mask, 0.0, causal, **kw)
        out["chosen"] = SDPBackend(choice).name if SDPBackend is not None else int(choice)
    except Exception as e:
        out["chosen"] = "unknown (%s)" % type(e).__name__
    if sdpa_kernel is not None:
        runs = []
        for b in ("FLASH_ATTENTION", "EFFICIENT_ATTENTION", "CUDNN_ATTENTION", "MATH"):
            if not hasattr(SDPBackend, b):
                continue
            try:
                with sdpa_kernel([getattr(SDPBackend, b)]):
                    torch.nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=mask, is_causal=causal, **kw)
                runs.append(b)
            except Exception:
                pass
        out["can_run"] = runs
    print("%-34s chosen %-22s can run: %s" % (name, out["chosen"], ", ".join(out.get("can_run", []))))
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bench", required=True, help="bench model-step --json output")
    ap.add_argument("--config", required=True, help="the model's config.json")
    ap.add_argument("--json", required=True)
    a = ap.parse_args()
    try:
        import torch

        b = json.load(open(a.bench))
        c = json.load(open(a.config))
        t, vc = c["text_config"], c["vision_config"]
        dev, dt = "cuda", torch.bfloat16
        B, L = b["pairs"], b["seq_len"]
        H, KV, D = t["num_attention_heads"], t["num_key_value_heads"], t["head_dim"]
        q = torch.randn(B, H, L, D, device=dev, dtype=dt)
        k = torch.randn(B, KV, L, D, device=dev, dtype=dt)
        v = torch.randn_like(k)
        res = [probe(torch, "text causal, native GQA", q, k, v, None, True, True)]
        mask = torch.ones(B, 1, L, L, device=dev, dtype=torch.bool).tril()
        kr, vr = k.repeat_interleave(H // KV, 1), v.repeat_interleave(H // KV, 1)
        res.append(probe(torch, "text padding mask, K/V repeated", q, kr, vr, mask, False, False))
        del q, k, v, kr, vr, mask
        th, gh, gw = b["grid_thw"]
        n = b["images"] * th
        vh = vc["num_heads"]
        vd = vc["hidden_size"] // vh
        vq = torch.randn(n, vh, gh * gw, vd, device=dev, dtype=dt)
        res.append(probe(torch, "vision per frame (batched)", vq, vq, vq, None, False, False))
        json.dump(res, open(a.json, "w"), indent=2)
        return 0
    except Exception:
        traceback.print_exc()
        return 1


if __name__ == "__main__":
    sys.exit(main())
