#!/usr/bin/env python3
"""PyAV baseline for `robometer bench decode`: the same sampling plan (splitmix64, K frames at
round(linspace(start, end, K)) of a random sub-clip per trajectory), the same bilinear resize
to the same size, one decoder thread, the file opened once per trajectory.

Two PyAV strategies are timed:
  forward  LeRobot's decode_video_frames_pyav style: seek once to the first wanted timestamp
           (keyframe at/before), decode forward until the last one, convert only wanted frames.
  seek     torchvision style: for each wanted frame, seek to it (keyframe at/before) and
           decode forward to it.
Run: /usr/bin/python3 scripts/bench/decode_pyav.py --files a.mp4 b.mp4 [--k 8] [--short-edge 240]
"""
import argparse
import resource
import sys
import time

import av

MASK = (1 << 64) - 1


def splitmix64(state):
    state = (state + 0x9E3779B97F4A7C15) & MASK
    z = state
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK
    return state, z ^ (z >> 31)


def sample_plan(num_frames, k, trajectories, seed, file_no):
    """Bit-identical to sample_plan() in src/cli/cmd_bench_decode.cpp."""
    import math
    state = (seed * 0x100000001B3 + file_no) & MASK
    plan = []
    for _ in range(trajectories):
        idx = [0] * k
        if num_frames >= 2:
            state, r = splitmix64(state)
            start = r % (num_frames - 1)
            state, r = splitmix64(state)
            end = start + 1 + r % (num_frames - 1 - start)
            for j in range(k):
                frac = j / (k - 1) if k > 1 else 0.0
                idx[j] = int(math.floor(start + (end - start) * frac + 0.5))
        plan.append(idx)
    return plan


def out_size(w, h, short_edge):
    """ShortEdge rule of robometer's ResizeSpec: other side rounded to the nearest even."""
    if short_edge <= 0:
        return w, h
    import math
    even = lambda x: max(2, 2 * int(math.floor(x / 2.0 + 0.5)))  # std::lround for x > 0
    if w <= h:
        return short_edge, even(h * short_edge / w)
    return even(w * short_edge / h), short_edge


def probe(path):
    with av.open(path) as c:
        s = c.streams.video[0]
        n = s.frames
        if n <= 0:  # webm/mkv: count packets like robometer's index
            n = sum(1 for p in c.demux(s) if p.pts is not None or p.dts is not None)
        return n, s.codec_context.width, s.codec_context.height, s.codec_context.name, float(s.average_rate)


def open_single_thread(path):
    c = av.open(path)
    s = c.streams.video[0]
    s.thread_type = "SLICE"
    s.codec_context.thread_count = 1
    return c, s


def convert(frame, w, h):
    return frame.reformat(width=w, height=h, format="rgb24", interpolation="BILINEAR").to_ndarray()


def read_forward(path, indices, fps, w, h):
    c, s = open_single_thread(path)
    tb = float(s.time_base)
    half = 0.5 / fps
    wanted = sorted(set(indices))
    want_t = [i / fps for i in wanted]
    got = {}
    c.seek(int(want_t[0] / tb), backward=True, any_frame=False, stream=s)
    decoded = 0
    for frame in c.decode(s):
        decoded += 1
        t = frame.pts * tb
        if t > want_t[-1] + half:
            break
        for i, wt in zip(wanted, want_t):
            if i not in got and abs(t - wt) < half:
                got[i] = convert(frame, w, h)
        if len(got) == len(wanted):
            break
    c.close()
    if len(got) != len(wanted):
        raise RuntimeError(f"{path}: PyAV forward read missed frames {sorted(set(wanted) - set(got))}")
    return [got[i] for i in indices], decoded


def read_seek_each(path, indices, fps, w, h):
    c, s = open_single_thread(path)
    tb = float(s.time_base)
    half = 0.5 / fps
    got = {}
    decoded = 0
    for i in sorted(set(indices)):
        wt = i / fps
        c.seek(int(wt / tb), backward=True, any_frame=False, stream=s)
        for frame in c.decode(s):
            decoded += 1
            t = frame.pts * tb
            if abs(t - wt) < half:
                got[i] = convert(frame, w, h)
                break
            if t > wt + half:
                break
    c.close()
    if len(got) != len(set(indices)):
        raise RuntimeError(f"{path}: PyAV seek read missed frames")
    return [got[i] for i in indices], decoded


def cpu_seconds():
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--files", nargs="+", required=True)
    ap.add_argument("--k", type=int, default=8)
    ap.add_argument("--short-edge", type=int, default=240)
    ap.add_argument("--repeat", type=int, default=20)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--mode", choices=["forward", "seek", "both"], default="both")
    ap.add_argument("--csv", action="store_true")
    a = ap.parse_args()
    modes = ["forward", "seek"] if a.mode == "both" else [a.mode]
    readers = {"forward": read_forward, "seek": read_seek_each}
    if a.csv:
        print("file,mode,codec,src,out,frames,trajectories,k,frames_per_s,frames_per_cpu_s,ms_per_traj,decoded_per_traj")
    for file_no, path in enumerate(a.files):
        n, sw, sh, codec, fps = probe(path)
        w, h = out_size(sw, sh, a.short_edge)
        plan = sample_plan(n, a.k, a.repeat, a.seed, file_no)
        for mode in modes:
            read = readers[mode]
            read(path, plan[0], fps, w, h)  # warm-up
            decoded = 0
            c0, t0 = cpu_seconds(), time.perf_counter()
            for idx in plan:
                frames, d = read(path, idx, fps, w, h)
                assert len(frames) == a.k and frames[0].shape == (h, w, 3)
                decoded += d
            wall, cpu = time.perf_counter() - t0, cpu_seconds() - c0
            total = a.k * a.repeat
            row = [path, mode, codec, f"{sw}x{sh}", f"{w}x{h}", n, a.repeat, a.k, f"{total / wall:.1f}",
                   f"{total / cpu:.1f}", f"{1e3 * wall / a.repeat:.3f}", f"{decoded / a.repeat:.1f}"]
            if a.csv:
                print(",".join(str(x) for x in row))
            else:
                print(f"{path[-44:]:44s} {mode:8s} {codec:5s} {w}x{h} {total / wall:8.1f} fps "
                      f"{total / cpu:8.1f} fps/cpu {1e3 * wall / a.repeat:7.2f} ms/traj {decoded / a.repeat:6.1f} dec/traj")
            sys.stdout.flush()


if __name__ == "__main__":
    main()
