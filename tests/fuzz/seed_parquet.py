#!/usr/bin/env python3
"""Seeds for fuzz_parquet: the hand-written multi-page file (tests/io/parquet_handmade.py) and
small real LeRobot files from ../shared/data when present. usage: seed_parquet.py CORPUS_DIR"""
import os
import shutil
import subprocess
import sys

corpus = sys.argv[1]
os.makedirs(corpus, exist_ok=True)
root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
subprocess.run([sys.executable, os.path.join(root, "tests/io/parquet_handmade.py"),
                os.path.join(corpus, "seed_handmade.parquet")], check=True)
shared = os.path.join(root, "..", "shared", "data")
for rel in ["G1-policy-train/data/chunk-000/episode_000029.parquet",
            "rerun/tests/assets/lerobot/v30_apple_storage/meta/tasks.parquet",
            "rerun/tests/assets/lerobot/v30_apple_storage/meta/episodes/chunk-000/file-000.parquet"]:
    src = os.path.join(shared, rel)
    if os.path.exists(src) and os.path.getsize(src) < 200_000:
        shutil.copy(src, os.path.join(corpus, "seed_" + os.path.basename(os.path.dirname(rel)) + "_" + os.path.basename(rel)))
