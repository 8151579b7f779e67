#!/usr/bin/env python3
"""Scale benchmark of `robometer ingest` (README "Benchmarks"): max RSS and wall time at N episodes.

  scripts/bench/ingest_scale.py [--robometer build/robometer] [--before OLD_BINARY]
                                [--dir /tmp/ingest_scale] [--episodes 100000,1000000]
                                [--formats lerobot,rbm] [--probe]

1. Generates, once per size, with DuckDB (the npm package in .deps/node, scripts/deps-node):
   - a LeRobot v3.0 metadata set: meta/info.json, meta/episodes/chunk-*/file-*.parquet
     (10,000 episodes per file), one camera; 100 episodes share each mp4 (hard links to one real
     clip from ../shared, so the readers' existence checks and the manifest's stat() are real);
   - RBM parquet shards (10,000 rows each; 30 sources, 40k tasks; runs of adjacent rows point at
     one of 1,000 mp4 links).
2. Runs `/usr/bin/time -v ROBOMETER ingest`, with and without --no-index (LeRobot: --no-probe; RBM shards have no frame counts,
   so they are probed, --threads 2) and BEFORE when given (e.g. a build of the previous commit),
   prints wall time and max RSS, and checks that both binaries wrote the same trajectories.jsonl
   (sha256).
   --probe also runs a probed ingest (each distinct video opened once) of the smallest size;
   --index runs `data index` alone on each manifest (the index build's share of the peak);
   --validate runs `data validate` on the largest LeRobot manifest with its videos moved away, and
   on a copy where every id appears twice (memory stays bounded; the listing is capped).
Standard library only (plus node for the generation).
"""
import argparse
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CLIP = os.path.join(ROOT, "..", "shared", "data", "robometer", "scripts", "example_videos",
                    "soar_put_green_stick_in_brown_bowl.mp4")
DUCKDB = os.path.join(ROOT, ".deps", "node", "node_modules", "@duckdb", "node-api", "lib", "index.js")
PER_FILE = 10000     # metadata rows per parquet file
PER_VIDEO = 100      # LeRobot v3.0 episodes per mp4
RBM_VIDEOS = 1000    # distinct mp4s the RBM rows point at

NODE_SCRIPT = r"""
const { DuckDBInstance } = await import(process.argv[2]);
const jobs = JSON.parse(process.argv[3]);
const con = await (await DuckDBInstance.create(':memory:')).connect();
for (const [out, select] of jobs)
  await con.run(`COPY (${select}) TO '${out.replaceAll("'", "''")}' (FORMAT parquet)`);
"""


def duckdb(jobs):
    with tempfile.NamedTemporaryFile("w", suffix=".mjs", delete=False) as f:
        f.write(NODE_SCRIPT)
    try:
        subprocess.run(["node", f.name, DUCKDB, json.dumps(jobs)], check=True)
    finally:
        os.unlink(f.name)


def chunked(i):
    return "chunk-%03d/file-%03d" % (i // 1000, i % 1000)


def make_lerobot(dir, n):
    if os.path.exists(os.path.join(dir, "meta", "info.json")):
        return
    shutil.rmtree(dir, ignore_errors=True)
    for v in range((n + PER_VIDEO - 1) // PER_VIDEO):
        p = os.path.join(dir, "videos", "cam", chunked(v) + ".mp4")
        os.makedirs(os.path.dirname(p), exist_ok=True)
        os.link(CLIP, p)
    jobs = []
    for f in range((n + PER_FILE - 1) // PER_FILE):
        out = os.path.join(dir, "meta", "episodes", chunked(f) + ".parquet")
        os.makedirs(os.path.dirname(out), exist_ok=True)
        e = PER_VIDEO
        jobs.append([out,
                     "SELECT i AS episode_index, ['task ' || (i %% 40000) || ': pick up the object and "
                     "place it in bin ' || (i %% 7)] AS tasks, 4::BIGINT AS length, "
                     "(i // %d // 1000)::BIGINT AS \"videos/cam/chunk_index\", "
                     "(i // %d %% 1000)::BIGINT AS \"videos/cam/file_index\", "
                     "((i %% %d %% 8) * 0.4)::DOUBLE AS \"videos/cam/from_timestamp\", "
                     "((i %% %d %% 8) * 0.4 + 0.4)::DOUBLE AS \"videos/cam/to_timestamp\" "
                     "FROM range(%d, %d) t(i)" % (e, e, e, e, f * PER_FILE, min(n, (f + 1) * PER_FILE))])
    duckdb(jobs)
    with open(os.path.join(dir, "meta", "info.json"), "w") as fh:
        json.dump({"codebase_version": "v3.0", "fps": 10, "total_episodes": n, "total_frames": 4 * n,
                   "features": {"cam": {"dtype": "video"}}}, fh)


def make_rbm(dir, n):
    if os.path.exists(os.path.join(dir, "done")):
        return
    shutil.rmtree(dir, ignore_errors=True)
    os.makedirs(os.path.join(dir, "videos"))
    for v in range(RBM_VIDEOS):
        os.link(CLIP, os.path.join(dir, "videos", "v-%04d.mp4" % v))
    jobs = []
    for f in range((n + PER_FILE - 1) // PER_FILE):
        jobs.append([os.path.join(dir, "shard-%05d.parquet" % f),
                     "SELECT 'source_' || (i %% 30) || '/traj_' || lpad(i::VARCHAR, 8, '0') AS id, "
                     "'task ' || (i %% 40000) || ': pick up the object and place it in bin ' || (i %% 7) AS task, "
                     "'source_' || (i %% 30) AS data_source, "
                     "'videos/v-' || lpad((i * %d // %d)::VARCHAR, 4, '0') || '.mp4' AS frames, true AS is_robot, "
                     "CASE WHEN i %% 10 < 7 THEN 'successful' WHEN i %% 10 < 9 THEN 'failure' "
                     "ELSE 'suboptimal' END AS quality_label, "
                     "(CASE WHEN i %% 30 = 0 THEN (i %% 100) / 100.0 ELSE NULL END)::DOUBLE AS partial_success "
                     "FROM range(%d, %d) t(i)" % (RBM_VIDEOS, n, f * PER_FILE, min(n, (f + 1) * PER_FILE))])
    duckdb(jobs)
    open(os.path.join(dir, "done"), "w").close()


def timed(cmd):
    """wall seconds, max RSS MB, output of one command under /usr/bin/time -v."""
    r = subprocess.run(["/usr/bin/time", "-v"] + cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       text=True)
    if r.returncode != 0:
        sys.exit("failed: %s\n%s" % (" ".join(cmd), r.stdout[-3000:]))
    rss = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", r.stdout).group(1)) / 1024
    wall = re.search(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): ([\d:.]+)", r.stdout).group(1)
    secs = 0.0
    for part in wall.split(":"):
        secs = secs * 60 + float(part)
    return secs, rss, r.stdout[: r.stdout.find("\tCommand being timed")]


def validate(exe, dir, extra=()):
    """`data validate` exits 1 when it finds problems: timed without failing on that."""
    r = subprocess.run(["/usr/bin/time", "-v", exe, "data", "validate"] + list(extra) + [dir],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    rss = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", r.stdout).group(1)) / 1024
    wall = re.search(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): ([\d:.]+)", r.stdout).group(1)
    secs = 0.0
    for part in wall.split(":"):
        secs = secs * 60 + float(part)
    body = [l for l in r.stdout[: r.stdout.find("\tCommand being timed")].splitlines()
            if l.strip() and not l.startswith("Command exited")]
    return secs, rss, body[-1].split(": ", 1)[-1] if body else ""


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--robometer", default=os.path.join(ROOT, "build", "robometer"))
    ap.add_argument("--before", help="a robometer binary to compare with (e.g. the previous commit's)")
    ap.add_argument("--dir", default="/tmp/ingest_scale")
    ap.add_argument("--episodes", default="100000,1000000")
    ap.add_argument("--formats", default="lerobot,rbm")
    ap.add_argument("--probe", action="store_true", help="also a probed ingest of the smallest size")
    ap.add_argument("--index", action="store_true", help="also `data index` alone on each manifest")
    ap.add_argument("--validate", action="store_true",
                    help="also `data validate` on the largest LeRobot manifest (videos missing; ids repeated)")
    a = ap.parse_args()
    if not os.path.exists(DUCKDB):
        sys.exit("DuckDB npm package missing: run scripts/deps-node")
    # "no-index": the streamed ingest alone (the binary index build at the end holds the index in
    # memory: `robometer data index` on the same manifest shows that part).
    binaries = [("after", a.robometer, []), ("no-index", a.robometer, ["--no-index"])] + (
        [("before", a.before, [])] if a.before else [])
    sizes = [int(x) for x in a.episodes.split(",")]
    for n in sizes:
        for fmt in a.formats.split(","):
            src = os.path.join(a.dir, "%s-%d" % (fmt, n))
            (make_lerobot if fmt == "lerobot" else make_rbm)(src, n)
            digests = {}
            for label, exe, extra in binaries:
                out = os.path.join(a.dir, "out-%s-%d-%s" % (fmt, n, label))
                shutil.rmtree(out, ignore_errors=True)
                # RBM shards carry no frame counts: they are always probed.
                mode = ["--no-probe"] if fmt == "lerobot" else ["--threads", "2"]
                secs, rss, body = timed([exe, "ingest", "--format", fmt, src, "--out", out] + mode + extra)
                line = next((l for l in body.splitlines() if l.startswith("ingested")), body.strip()[-200:])
                print("%-8s %-7s %8d rows %-14s %6.1f s, max RSS %6.0f MB   %s"
                      % (fmt, label, n, " ".join(mode) + ":", secs, rss, line[:60]), flush=True)
                digests[label] = sha256(os.path.join(out, "trajectories.jsonl"))
                if label != "after":
                    shutil.rmtree(out, ignore_errors=True)
            if a.index:
                out = os.path.join(a.dir, "out-%s-%d-after" % (fmt, n))
                secs, rss, _ = timed([a.robometer, "data", "index", out])
                print("%-8s %-7s %8d rows data index:     %6.1f s, max RSS %6.0f MB" % (fmt, "", n, secs, rss))
            if len(set(digests.values())) > 1:
                sys.exit("trajectories.jsonl differs between the binaries: %s" % digests)
            if a.before:
                print("         trajectories.jsonl identical (sha256 %s)" % digests["after"][:16])
    if a.validate:
        # The largest LeRobot manifest, its videos moved away (every record a problem), then a copy
        # whose ids repeat (each twice): `data validate` memory and time, the listing capped.
        n = sizes[-1]
        src, out = os.path.join(a.dir, "lerobot-%d" % n), os.path.join(a.dir, "out-lerobot-%d-after" % n)
        idx = os.path.join(out, "trajectories.rbmidx")
        os.rename(os.path.join(src, "videos"), os.path.join(src, "videos.gone"))
        os.rename(idx, idx + ".away")
        try:
            for label, exe, _ in binaries[:1] + binaries[2:]:
                secs, rss, body = validate(exe, out)
                print("validate %-7s %8d records, videos missing:  %6.1f s, max RSS %6.0f MB   %s"
                      % (label, n, secs, rss, body[-90:]), flush=True)
        finally:
            os.rename(os.path.join(src, "videos.gone"), os.path.join(src, "videos"))
            os.rename(idx + ".away", idx)
        dup = os.path.join(a.dir, "dup-%d" % n)
        os.makedirs(dup, exist_ok=True)
        shutil.copy(os.path.join(out, "manifest.json"), dup)
        with open(os.path.join(out, "trajectories.jsonl")) as f, \
                open(os.path.join(dup, "trajectories.jsonl"), "w") as o:
            for i, line in enumerate(f):
                o.write(re.sub(r'"id":"[^"]*"', '"id":"ep_%d"' % (i % (n // 2)), line, count=1))
        for label, exe, _ in binaries[:1] + binaries[2:]:
            secs, rss, body = validate(exe, dup, ["--no-videos"])
            print("validate %-7s %8d records, %d ids twice: %6.1f s, max RSS %6.0f MB   %s"
                  % (label, n, n // 2, secs, rss, body[-90:]), flush=True)
    if a.probe:
        n, fmt = sizes[0], "lerobot"
        src = os.path.join(a.dir, "%s-%d" % (fmt, n))
        for label, exe, extra in binaries:
            out = os.path.join(a.dir, "out-probe-%s" % label)
            shutil.rmtree(out, ignore_errors=True)
            secs, rss, body = timed([exe, "ingest", "--format", fmt, src, "--out", out, "--threads", "2"] + extra)
            line = next((l for l in body.splitlines() if l.startswith("ingested")), "")
            print("%-8s %-7s %8d episodes probed:     %6.1f s, max RSS %6.0f MB   %s"
                  % (fmt, label, n, secs, rss, line[:90]), flush=True)


if __name__ == "__main__":
    main()
