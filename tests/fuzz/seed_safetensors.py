#!/usr/bin/env python3
"""Writes a few valid .safetensors files (struct + json only) as the seed corpus of
fuzz_safetensors: scripts/fuzz runs `seed_safetensors.py <corpus dir>`."""
import json
import os
import struct
import sys


def write(path, tensors, metadata=None, pad=True):
    header, data = {}, b""
    if metadata is not None:
        header["__metadata__"] = metadata
    for name, dtype, shape, raw in tensors:
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [len(data), len(data) + len(raw)]}
        data += raw
    h = json.dumps(header, separators=(",", ":")).encode()
    if pad:
        h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + data)


out = sys.argv[1]
os.makedirs(out, exist_ok=True)
write(os.path.join(out, "empty.safetensors"), [])
write(os.path.join(out, "one_f32.safetensors"), [("w", "F32", [2, 2], struct.pack("<4f", 1, 2, 3, 4))])
write(os.path.join(out, "metadata.safetensors"), [("b", "BF16", [1], b"\x80\x3f")], {"format": "pt", "step": "7"})
write(os.path.join(out, "every_dtype.safetensors"), [
    ("f64", "F64", [1], struct.pack("<d", 0.5)),
    ("i64", "I64", [2], struct.pack("<2q", -1, 1)),
    ("f32", "F32", [1, 1], struct.pack("<f", 1.5)),
    ("i32", "I32", [1], struct.pack("<i", 3)),
    ("f16", "F16", [2], struct.pack("<2e", 1.0, -2.0)),
    ("i16", "I16", [1], struct.pack("<h", -3)),
    ("u8", "U8", [3], b"\x00\x01\xff"),
    ("i8", "I8", [1], b"\x80"),
    ("bool", "BOOL", [2], b"\x01\x00"),
], {"format": "pt"})
write(os.path.join(out, "edge_shapes.safetensors"), [
    ("empty", "F32", [0, 3], b""),
    ("scalar", "F64", [], struct.pack("<d", 2.0)),
    ("odd", "U8", [3], b"abc"),
    ("misaligned", "F32", [1], struct.pack("<f", 9.0)),
], None, pad=False)
