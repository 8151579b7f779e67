#!/usr/bin/env python3
"""Scale benchmark of the binary trajectory index (README "Benchmarks"), index vs JSONL path in one run.

  scripts/bench/index.py [--robometer build/robometer] [--dir /tmp/rbm1m] [--trajectories 1000000]
                         [--ranks 8] [--skip-train]

1. `robometer data generate-manifest` writes a synthetic manifest (30 sources, 40k tasks; every
   record points at one real clip from ../shared so that training can decode it), once.
2. `robometer data index DIR`: build time and file size.
3. `robometer data stats DIR` with the index and with --index off: wall time and max RSS
   (/usr/bin/time -v), the stats output compared; then with the index in robometer-full (the
   LibTorch-linked executable the front end hands other commands to) and its `version` alone.
4. `robometer bench sampler`: open time, memory and pairs/s on both paths, and the pair digest.
5. `robometer train configs/tiny.yaml` on the manifest: time until the first step is logged
   (metrics.jsonl) and the peak RSS then, data.index=auto vs off.
6. N processes mapping the same index at once (`bench sampler --skip-jsonl`): RSS, PSS and
   private memory of each from /proc/PID/smaps_rollup, against one process alone.
Standard library only.
"""
import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CLIP = os.path.join(ROOT, "..", "shared", "data", "robometer", "scripts", "example_videos",
                    "soar_put_green_stick_in_brown_bowl.mp4")


def run(cmd, **kw):
    return subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **kw)


def timed(cmd):
    """wall seconds, max RSS MB, output of one command under /usr/bin/time -v."""
    r = run(["/usr/bin/time", "-v"] + cmd)
    if r.returncode != 0:
        sys.exit("failed: %s\n%s" % (" ".join(cmd), r.stdout[-3000:]))
    rss = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", r.stdout).group(1)) / 1024
    wall = re.search(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): ([\d:.]+)", r.stdout).group(1)
    secs = 0.0
    for part in wall.split(":"):
        secs = secs * 60 + float(part)
    body = r.stdout[: r.stdout.find("\tCommand being timed")]
    return secs, rss, body


def smaps(pid):
    """Rss, Pss, Private (MB) of a running process."""
    out = {}
    with open("/proc/%d/smaps_rollup" % pid) as f:
        for line in f:
            m = re.match(r"(\w+):\s+(\d+) kB", line)
            if m:
                out[m.group(1)] = int(m.group(2)) / 1024
    return out["Rss"], out["Pss"], out.get("Private_Clean", 0) + out.get("Private_Dirty", 0)


def first_step(robometer, manifest, policy, workdir):
    """Seconds from start until metrics.jsonl holds a step, and VmHWM (MB) at that moment."""
    run_dir = os.path.join(workdir, "run_" + policy)
    shutil.rmtree(run_dir, ignore_errors=True)
    cmd = [robometer, "train", os.path.join(ROOT, "configs", "tiny.yaml"),
           "data.train=[{path: %s, weight: 1}]" % manifest, "data.eval=[]", "data.index=" + policy,
           "output.run_dir=" + run_dir, "train.max_steps=50", "output.tensorboard=false", "--no-progress"]
    t0 = time.monotonic()
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=ROOT)
    metrics = os.path.join(run_dir, "metrics.jsonl")
    try:
        while p.poll() is None:
            if os.path.exists(metrics) and os.path.getsize(metrics) > 0:
                secs = time.monotonic() - t0
                with open("/proc/%d/status" % p.pid) as f:
                    hwm = int(re.search(r"VmHWM:\s+(\d+)", f.read()).group(1)) / 1024
                return secs, hwm
            time.sleep(0.02)
        sys.exit("train exited with %d before its first step: %s" % (p.returncode, " ".join(cmd)))
    finally:
        if p.poll() is None:
            p.terminate()
            p.wait()


def ranks(robometer, manifest, n, pairs):
    """Memory of n processes sampling from the same mapped index, measured while all run."""
    procs = [subprocess.Popen([robometer, "bench", "sampler", "--manifest", manifest, "--skip-jsonl",
                               "--pairs", str(pairs)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
             for _ in range(n)]
    try:
        time.sleep(4.0)  # all have opened the index and sampled for a while
        figures = [smaps(p.pid) for p in procs if p.poll() is None]
    finally:
        for p in procs:
            if p.poll() is None:
                p.terminate()
            p.wait()
    if len(figures) != n:
        sys.exit("a sampler process ended before it was measured; raise --rank-pairs")
    return figures


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--robometer", default=os.path.join(ROOT, "build", "robometer"))
    ap.add_argument("--dir", default=os.path.join(tempfile.gettempdir(), "rbm1m"))
    ap.add_argument("--trajectories", type=int, default=1000000)
    ap.add_argument("--ranks", type=int, default=8)
    ap.add_argument("--rank-pairs", type=int, default=5000000)
    ap.add_argument("--pairs", type=int, default=200000)
    ap.add_argument("--skip-train", action="store_true")
    a = ap.parse_args()
    rb = os.path.abspath(a.robometer)
    man = os.path.join(a.dir, "manifest")
    if not os.path.exists(os.path.join(man, "manifest.json")):
        t0 = time.monotonic()
        r = run([rb, "data", "generate-manifest", man, "--video", CLIP, "--trajectories", str(a.trajectories),
                 "--sources", "30", "--tasks", "40000"])
        print(r.stdout.strip(), "(%.1f s)" % (time.monotonic() - t0))
    size = os.path.getsize(os.path.join(man, "trajectories.jsonl")) / 1e6
    r = run([rb, "data", "index", man])
    print(r.stdout.strip(), "| trajectories.jsonl %.0f MB" % size)

    s_idx, rss_idx, out_idx = timed([rb, "data", "stats", man])
    s_json, rss_json, out_json = timed([rb, "data", "stats", man, "--index", "off"])
    print("\ndata stats     index: %.2f s, %.0f MB max RSS | JSONL: %.2f s, %.0f MB | %.1fx faster, %.1fx less memory"
          " | output %s" % (s_idx, rss_idx, s_json, rss_json, s_json / s_idx, rss_json / rss_idx,
                            "identical" if out_idx == out_json else "DIFFERS"))
    # The same command in the LibTorch-linked executable, and that executable's start alone: what
    # the front end (which runs `data stats` without LibTorch) saves.
    full = os.path.join(os.path.dirname(rb), "robometer-full")
    if os.path.exists(full):
        s_full, rss_full, _ = timed([full, "data", "stats", man])
        s_ver, rss_ver, _ = timed([full, "version"])
        print("data stats in robometer-full (LibTorch loaded): %.2f s, %.0f MB | `robometer-full version` "
              "alone: %.2f s, %.0f MB" % (s_full, rss_full, s_ver, rss_ver))

    r = run([rb, "bench", "sampler", "--manifest", man, "--pairs", str(a.pairs)])
    print("\nbench sampler:\n" + r.stdout.strip())

    if not a.skip_train:
        work = tempfile.mkdtemp(prefix="rbm_index_bench_")
        try:
            t_idx, m_idx = first_step(rb, man, "auto", work)
            t_json, m_json = first_step(rb, man, "off", work)
        finally:
            shutil.rmtree(work, ignore_errors=True)
        print("\ntrain first step  index: %.2f s, peak %.0f MB | JSONL: %.2f s, peak %.0f MB | %.1fx faster"
              % (t_idx, m_idx, t_json, m_json, t_json / t_idx))

    one = ranks(rb, man, 1, a.rank_pairs)[0]
    many = ranks(rb, man, a.ranks, a.rank_pairs)
    pss = sum(f[1] for f in many)
    print("\n%d processes on one index: RSS %s MB, PSS %s MB, private %s MB each"
          % (a.ranks, "/".join("%.0f" % f[0] for f in many), "/".join("%.0f" % f[1] for f in many),
             "/".join("%.0f" % f[2] for f in many)))
    print("one alone: RSS %.0f, PSS %.0f, private %.0f MB; %d together: PSS %.0f MB in all, "
          "%.1f MB per extra process" % (one[0], one[1], one[2], a.ranks, pss, (pss - one[1]) / (a.ranks - 1)))


if __name__ == "__main__":
    main()
