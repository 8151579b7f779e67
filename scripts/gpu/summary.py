#!/usr/bin/env python3
"""The one table scripts/gpu/run ends with, from the JSON files its stages wrote.

Usage: summary.py WORK_DIR FIGURES_JSON TOTAL_SECONDS GPU_NAME CTEST_LOG
Prints the stages, the card (clocks, torch/CUDA/cuDNN), the fused paths compiled and switched
on, the SDPA backends torch picks for our calls, real vs computed tokens, model TFLOP, MFU/HFU
against the card's dense bf16 peak, per-phase times, peak memory, ours vs HF, LoRA, the
fused-vs-eager agreement, the activation-checkpointing sweep and the ctest result, and writes
everything to FIGURES_JSON. Missing inputs print as "(no result)"; it never raises.
"""
import json
import os
import re
import sys


def load(work, name):
    try:
        return json.load(open(os.path.join(work, name)))
    except Exception:
        return None


def text(work, name):
    try:
        return open(os.path.join(work, name)).read()
    except Exception:
        return ""


def recompute_share(plan, layers=36):
    """Share of the decoder's forward that checkpointing runs a second time (for HFU)."""
    if plan in ("full", "true", "on"):
        return 1.0
    if plan and plan.isdigit():
        return min(1.0, int(plan) / float(layers))
    return 0.0  # none; selective recomputes only elementwise ops (no matmul FLOPs)


def main():
    work, out, total, gpu, ctest_log = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5]
    stages = []
    for line in text(work, "stages.txt").splitlines():
        if line.strip():
            n, st, t = line.split("|")
            stages.append({"name": n, "status": st, "seconds": int(t)})
    fig = {"gpu": gpu, "total_s": total, "stages": stages}
    for key, name in (("bench_full", "bench_full.json"), ("hf_step", "hf_step.json"), ("bench_lora", "bench_lora.json"),
                      ("bench_sweep", "bench_sweep.json"), ("bench_full_fp32master", "bench_full_fp32master.json"),
                      ("sdpa_probe", "sdpa_probe.json")):
        fig[key] = load(work, name)
    fig["gpu_clocks"] = text(work, "gpu_clocks.csv").strip()
    fig["versions"] = text(work, "versions.txt").strip()
    ours, hf = fig["bench_full"], fig["hf_step"]
    if ours and hf:
        fig["ratio_ours_over_hf"] = ours["step_s_median"] / hf["step_s_median"]
        fig["hf_mfu_same_flops"] = ours["flops_per_step"] / hf["step_s_median"] / 1e12 / ours["peak_tflops"]

    print("\n================ summary (%s, %d s) ================" % (gpu, total))
    print("%-24s %-36s %6s" % ("stage", "status", "s"))
    for st in stages:
        print("%-24s %-36s %6s" % (st["name"], st["status"], st["seconds"]))
    print()
    print("card: %s" % (fig["gpu_clocks"].replace("\n", " | ") or gpu))
    print("versions: %s" % (fig["versions"] or "(no result)"))
    if ours:
        print("fused paths compiled: %s; switched %s" % (ours.get("fused_compiled", "?"),
                                                        "on" if ours.get("fused_enabled") else "off"))
    for p in fig["sdpa_probe"] or []:
        print("SDPA %-34s -> %s (can run: %s)" % (p["call"], p["chosen"], ", ".join(p.get("can_run", []))))

    def row(name, j):
        if not j:
            print("%-26s (no result)" % name)
            return
        share = recompute_share(str(j.get("checkpointing", "")))
        hfu = j.get("mfu", 0) * (1 + share / 3.0)
        print("%-26s step %7.3f s (p90 %6.3f)  fwd %.3f bwd %.3f opt %.3f  %6.2f samples/s  %8.0f tok/s  "
              "MFU %5.1f%%  HFU~%5.1f%%  peak %6.2f GiB" % (
                  name, j["step_s_median"], j.get("step_s_p90", float("nan")), j.get("forward_s_mean", 0),
                  j.get("backward_s_mean", 0), j.get("optimizer_s_mean", 0), j["samples_per_s"], j["tokens_per_s"],
                  100 * j.get("mfu", 0), 100 * hfu, j.get("peak_alloc_gib", -1)))

    if ours:
        computed = ours["pairs"] * ours["seq_len"]
        print("shapes: %d pairs, seq_len %d: %d real tokens of %d computed (%.1f%% padding), %d images, %d pixel "
              "patches; %.1f TFLOP/step (model FLOPs, no recompute); checkpointing %s" % (
                  ours["pairs"], ours["seq_len"], ours["tokens"], computed, 100.0 * (1 - ours["tokens"] / computed),
                  ours["images"], ours["pixel_patches"], ours["flops_per_step"] / 1e12, ours.get("checkpointing")))
        print("MFU against %.0f TFLOP/s dense bf16; HFU adds the recomputed decoder forward (approx.)"
              % ours["peak_tflops"])
    row("ours full bf16", ours)
    if hf:
        j = dict(hf)
        if ours:
            j["mfu"] = fig["hf_mfu_same_flops"]
            j["checkpointing"] = "full"
        row("HF transformers bf16", j)
    row("ours LoRA r=32", fig["bench_lora"])
    row("ours full fp32 master", fig["bench_full_fp32master"])
    for line in text(work, "bench_score.txt").splitlines():
        if line.startswith("bench score:"):
            print(line.rstrip())
            fig["bench_score"] = line.strip()
    ag = (ours or {}).get("agreement")
    if ag:
        rl = abs(ag["loss_fused"] - ag["loss_eager"]) / max(1e-12, abs(ag["loss_eager"]))
        rg = abs(ag["grad_norm_fused"] - ag["grad_norm_eager"]) / max(1e-12, abs(ag["grad_norm_eager"]))
        print("fused vs eager (same weights, batch): loss %.6f vs %.6f (rel %.1e), grad norm %.5f vs %.5f (rel %.1e)"
              % (ag["loss_fused"], ag["loss_eager"], rl, ag["grad_norm_fused"], ag["grad_norm_eager"], rg))
    sw = (fig["bench_sweep"] or {}).get("sweep") or []
    if sw:
        print("\nactivation checkpointing sweep (one model, 3 steps each):")
        print("  %-16s %9s %9s %8s %10s" % ("plan", "step s", "p90 s", "MFU", "peak GiB"))
        fits = []
        for e in sw:
            name = e["checkpointing"] + ("" if e.get("fused", True) else "/eager")
            if "error" in e:
                print("  %-16s failed: %s" % (name, e["error"][:80]))
                continue
            print("  %-16s %9.3f %9.3f %7.1f%% %10.2f" % (name, e["step_s_median"], e["step_s_p90"], 100 * e["mfu"],
                                                         e["peak_alloc_gib"]))
            if e.get("fused", True):
                fits.append((e["step_s_median"], e["checkpointing"]))
        if ours:
            fits.append((ours["step_s_median"], ours.get("checkpointing")))
        if fits:
            best = min(fits)
            fig["fastest_plan"] = {"checkpointing": best[1], "step_s": best[0]}
            print("  fastest plan that fit: %s (%.3f s)" % (best[1], best[0]))
    try:
        log = open(ctest_log).read()
        m = re.search(r"(\d+)% tests passed, (\d+) tests failed out of (\d+)", log)
        if m:
            fig["ctest"] = {"passed_pct": int(m.group(1)), "failed": int(m.group(2)), "total": int(m.group(3))}
            print("\nctest (GPU build): %s%% passed, %s failed of %s" % m.groups())
    except OSError:
        pass
    if "ratio_ours_over_hf" in fig:
        r = fig["ratio_ours_over_hf"]
        print("\nours / HF step time = %.3f (goal <= 0.55: %s); ours MFU %.1f%% (goal >= 45%%: %s)" % (
            r, "met" if r <= 0.55 else "NOT met", 100 * ours["mfu"], "met" if ours["mfu"] >= 0.45 else "NOT met"))
        lora = fig["bench_lora"]
        if lora:
            print("LoRA step %.3f s vs full %.3f s (goal LoRA <= full: %s)" % (
                lora["step_s_median"], ours["step_s_median"],
                "met" if lora["step_s_median"] <= ours["step_s_median"] else "NOT met"))
    json.dump(fig, open(out, "w"), indent=2)


if __name__ == "__main__":
    try:
        main()
    except Exception as e:  # the summary must never hide the run's outputs
        print("summary: %s: %s" % (type(e).__name__, e))
