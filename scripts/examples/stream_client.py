#!/usr/bin/env python3
"""Streaming rewards for online RL: a gym-style env wrapper that asks `robometer serve` for a
reward at every step (one KV-cached forward per new frame, see README "Streaming rewards").

    robometer serve --checkpoint runs/tiny --port 8000 &
    python3 scripts/examples/stream_client.py --url http://127.0.0.1:8000 --steps 20

Needs only Debian's python3-requests. The toy env below draws a square that moves towards a
target; any env whose observations are uint8 HxWx3 frames (bytes, or numpy arrays via
.tobytes()) works the same way.
"""
import argparse
import base64
import random
import sys

import requests


class ToyReachEnv:
    """A red square that moves a little towards a green target each step (gym-style API)."""

    def __init__(self, size=64, seed=0):
        self.size, self.rng = size, random.Random(seed)

    def _frame(self):
        s = self.size
        img = bytearray([40] * (s * s * 3))
        for (cx, cy), rgb in (((self.tx, self.ty), (0, 200, 0)), ((self.x, self.y), (220, 0, 0))):
            for yy in range(max(0, cy - 4), min(s, cy + 4)):
                for xx in range(max(0, cx - 4), min(s, cx + 4)):
                    img[(yy * s + xx) * 3:(yy * s + xx) * 3 + 3] = bytes(rgb)
        return bytes(img)

    def reset(self):
        self.x, self.y = self.rng.randrange(8, 24), self.rng.randrange(8, 56)
        self.tx, self.ty = 52, 32
        return self._frame(), {}

    def step(self, action=None):
        self.x += (self.tx > self.x) - (self.tx < self.x) + self.rng.choice((0, 1))
        self.y += (self.ty > self.y) - (self.ty < self.y)
        done = abs(self.x - self.tx) + abs(self.y - self.ty) <= 2
        return self._frame(), 0.0, done, False, {}


class RobometerReward:
    """Wraps an env: reset() opens a session with the task, step() sends the new frame and adds
    the model's reward. reward_mode "progress" adds progress_t, "delta" adds progress_t - progress_{t-1}
    (potential-based shaping). info gets robometer_progress and robometer_success."""

    def __init__(self, env, url, task, size, reward_mode="delta", timeout=30):
        self.env, self.url, self.task, self.size = env, url.rstrip("/"), task, size
        self.reward_mode, self.timeout = reward_mode, timeout
        self.http, self.session, self.last = requests.Session(), None, 0.0

    def _frames(self, frame):
        r = self.http.post(f"{self.url}/sessions/{self.session}/frames", timeout=self.timeout,
                           json={"frames": base64.b64encode(frame).decode(), "shape": [self.size, self.size, 3]})
        if r.status_code != 200:  # 409: the episode passed --max-frames-per-session; 503: a cap
            raise RuntimeError(f"robometer: HTTP {r.status_code}: {r.json().get('error')}")
        body = r.json()
        return body["progress"][-1], body["success"][-1]

    def close_session(self):
        if self.session:
            self.http.delete(f"{self.url}/sessions/{self.session}", timeout=self.timeout)
            self.session = None

    def reset(self):
        self.close_session()
        r = self.http.post(f"{self.url}/sessions", json={"task": self.task}, timeout=self.timeout)
        r.raise_for_status()
        self.session = r.json()["session"]
        obs, info = self.env.reset()
        self.last, _ = self._frames(obs)  # the first frame is part of the episode too
        return obs, info

    def step(self, action=None):
        obs, reward, terminated, truncated, info = self.env.step(action)
        progress, success = self._frames(obs)
        reward += progress - self.last if self.reward_mode == "delta" else progress
        self.last = progress
        info = dict(info, robometer_progress=progress, robometer_success=success)
        return obs, reward, terminated, truncated, info


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--url", default="http://127.0.0.1:8000")
    ap.add_argument("--task", default="move the red square onto the green square")
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--reward", choices=("delta", "progress"), default="delta")
    a = ap.parse_args()
    env = RobometerReward(ToyReachEnv(a.size), a.url, a.task, a.size, a.reward)
    env.reset()
    total = 0.0
    try:
        for t in range(a.steps):
            _, reward, terminated, truncated, info = env.step()
            total += reward
            print(f"step {t + 1:3d}  reward {reward:+.4f}  progress {info['robometer_progress']:.4f}  "
                  f"P(success) {info['robometer_success']:.4f}")
            if terminated or truncated:
                break
    finally:
        env.close_session()
    print(f"return {total:+.4f}")


if __name__ == "__main__":
    sys.exit(main())
