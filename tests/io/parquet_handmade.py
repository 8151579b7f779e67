#!/usr/bin/env python3
"""Writes a small Parquet file by hand for what DuckDB's writer never emits: several data pages
per column chunk (DuckDB splits pages only past 100 MB), DELTA_BYTE_ARRAY and GZIP-compressed v1
pages with repetition levels. Written from the format spec (no pyarrow here). The test does not
trust this writer: DuckDB reads the file back and the C++ reader must agree with DuckDB.

usage: parquet_handmade.py OUT.parquet [gzip|lz4|lzo]
  gzip (default)  the compressed columns use GZIP
  lz4             they use the deprecated LZ4 codec, Hadoop-framed ([u32 BE raw size][u32 BE
                  compressed size][LZ4 block]), compressed by the system liblz4
  lzo             they claim LZO (codec 3) but hold GZIP data: no reader here supports LZO,
                  the file exists to see the codec named in the error
"""
import ctypes
import gzip
import struct
import sys

# ---------------------------------------------------------------- thrift compact protocol
I32, I64, BINARY, LIST, STRUCT = 5, 6, 8, 9, 12


def uleb(v):
    out = bytearray()
    while True:
        b = v & 0x7F
        v >>= 7
        out.append(b | 0x80 if v else b)
        if not v:
            return bytes(out)


def zigzag(v):
    return (v << 1) ^ (v >> 63)


def t_struct(fields):
    """fields: list of (id, type, value); value of a LIST is (elem_type, [values])."""
    out, last = bytearray(), 0
    for fid, ftype, val in fields:
        delta = fid - last
        out += bytes([(delta << 4) | ftype]) if 0 < delta <= 15 else bytes([ftype]) + uleb(zigzag(fid))
        last = fid
        out += t_value(ftype, val)
    return bytes(out + b"\x00")


def t_value(ftype, val):
    if ftype in (I32, I64):
        return uleb(zigzag(val) & ((1 << 64) - 1))
    if ftype == BINARY:
        data = val.encode() if isinstance(val, str) else val
        return uleb(len(data)) + data
    if ftype == STRUCT:
        return val
    if ftype == LIST:
        etype, items = val
        head = bytes([(len(items) << 4) | etype]) if len(items) < 15 else bytes([0xF0 | etype]) + uleb(len(items))
        return head + b"".join(t_value(etype, x) for x in items)
    raise ValueError(ftype)


# ---------------------------------------------------------------- encodings
def bit_width(v):
    return v.bit_length()


def rle_bitpacked(values, width):
    """RLE/bit-packed hybrid using only bit-packed runs (padded to groups of 8)."""
    if width == 0:
        return uleb(len(values) << 1) if values else b""
    padded = list(values) + [0] * (-len(values) % 8)
    acc = nbits = 0
    body = bytearray()
    for v in padded:
        acc |= v << nbits
        nbits += width
        while nbits >= 8:
            body.append(acc & 0xFF)
            acc >>= 8
            nbits -= 8
    return uleb(((len(padded) // 8) << 1) | 1) + bytes(body)


def delta_binary_packed(vals):
    out = bytearray(uleb(128) + uleb(4) + uleb(len(vals)) + uleb(zigzag(vals[0] if vals else 0)))
    for start in range(1, len(vals), 128):
        deltas = [vals[i] - vals[i - 1] for i in range(start, min(len(vals), start + 128))]
        mn = min(deltas)
        out += uleb(zigzag(mn))
        widths, body = bytearray(), bytearray()
        for m in range(4):
            chunk = [d - mn for d in deltas[m * 32:(m + 1) * 32]]
            if not chunk:
                widths.append(0)
                continue
            w = max(chunk).bit_length()
            widths.append(w)
            chunk += [0] * (32 - len(chunk))
            acc = nbits = 0
            for v in chunk:
                acc |= v << nbits
                nbits += w
                while nbits >= 8:
                    body.append(acc & 0xFF)
                    acc >>= 8
                    nbits -= 8
        out += widths + body
    return bytes(out)


def delta_byte_array(strings):
    prefixes, suffixes, prev = [], [], b""
    for s in strings:
        p = 0
        while p < min(len(prev), len(s)) and prev[p] == s[p]:
            p += 1
        prefixes.append(p)
        suffixes.append(s[p:])
        prev = s
    return delta_binary_packed(prefixes) + delta_binary_packed([len(s) for s in suffixes]) + b"".join(suffixes)


# ---------------------------------------------------------------- file
GZIP, LZO, LZ4 = 2, 3, 5
PLAIN, RLE, DELTA_BYTE_ARRAY = 0, 3, 7
CODECS = {"gzip": GZIP, "lz4": LZ4, "lzo": LZO}


def lz4_hadoop(raw):
    lib = ctypes.CDLL("liblz4.so.1")
    bound = lib.LZ4_compressBound(len(raw))
    dst = ctypes.create_string_buffer(bound)
    n = lib.LZ4_compress_default(bytes(raw), dst, len(raw), bound)
    if n <= 0:
        raise RuntimeError("LZ4_compress_default failed")
    return struct.pack(">II", len(raw), n) + dst.raw[:n]


def compress(raw, codec):
    if codec in (GZIP, LZO):
        return gzip.compress(bytes(raw))
    if codec == LZ4:
        return lz4_hadoop(raw)
    return bytes(raw)


def page_v1(num_values, encoding, rep, max_rep, defs, max_def, values, codec):
    raw = bytearray()
    if max_rep:
        r = rle_bitpacked(rep, bit_width(max_rep))
        raw += struct.pack("<I", len(r)) + r
    if max_def:
        d = rle_bitpacked(defs, bit_width(max_def))
        raw += struct.pack("<I", len(d)) + d
    raw += values
    body = compress(raw, codec)
    dph = t_struct([(1, I32, num_values), (2, I32, encoding), (3, I32, RLE), (4, I32, RLE)])
    header = t_struct([(1, I32, 0), (2, I32, len(raw)), (3, I32, len(body)), (5, STRUCT, dph)])
    return header + body, len(header) + len(raw)


def main(out_path, compressed_codec=GZIP):
    rows_per_group, groups, rows_per_page = 1000, 2, 300
    f = bytearray(b"PAR1")
    row_groups = []
    for g in range(groups):
        base = g * rows_per_group
        chunks = []
        # column "id": INT64 required, PLAIN
        # column "name": optional STRING, DELTA_BYTE_ARRAY, NULL every 7th row
        # column "vals": optional list<optional int32>, PLAIN; NULL list / empty / NULL elements
        specs = [("id", 2, ["id"], 0, 0), ("name", 6, ["name"], 1, 0), ("vals", 1, ["vals", "list", "element"], 3, 1)]
        for name, ptype, path, max_def, max_rep in specs:
            codec = compressed_codec if name != "id" else 0
            start = len(f)
            total_uncompressed = num_values = 0
            encoding = DELTA_BYTE_ARRAY if name == "name" else PLAIN
            for p0 in range(0, rows_per_group, rows_per_page):
                rows = range(base + p0, base + min(rows_per_group, p0 + rows_per_page))
                rep, defs, present = [], [], []
                for i in rows:
                    if name == "id":
                        present.append(i * 37 - 1000)
                    elif name == "name":
                        if i % 7 == 3:
                            defs.append(0)
                        else:
                            defs.append(1)
                            present.append(f"episode/{i // 10:05d}/camera_{i % 3}".encode())
                    else:
                        if i % 11 == 5:  # NULL list
                            rep.append(0); defs.append(0)
                        elif i % 11 == 6:  # empty list
                            rep.append(0); defs.append(1)
                        else:
                            for k in range(i % 4 + 1):
                                rep.append(0 if k == 0 else 1)
                                if (i + k) % 5 == 0:
                                    defs.append(2)  # NULL element
                                else:
                                    defs.append(3)
                                    present.append(i * 10 + k)
                n = len(defs) if max_def else len(present)
                if name == "id":
                    values = struct.pack(f"<{len(present)}q", *present)
                elif name == "name":
                    values = delta_byte_array(present)
                else:
                    values = struct.pack(f"<{len(present)}i", *present)
                page, usize = page_v1(n, encoding, rep, max_rep, defs, max_def, values, codec)
                f += page
                total_uncompressed += usize
                num_values += n
            meta = t_struct([(1, I32, ptype), (2, LIST, (I32, [encoding, RLE])), (3, LIST, (BINARY, path)),
                             (4, I32, codec), (5, I64, num_values), (6, I64, total_uncompressed),
                             (7, I64, len(f) - start), (9, I64, start)])
            chunks.append(t_struct([(2, I64, start), (3, STRUCT, meta)]))
        row_groups.append(t_struct([(1, LIST, (STRUCT, chunks)), (2, I64, 0), (3, I64, rows_per_group)]))
    schema = [
        t_struct([(4, BINARY, "schema"), (5, I32, 3)]),
        t_struct([(1, I32, 2), (3, I32, 0), (4, BINARY, "id")]),
        t_struct([(1, I32, 6), (3, I32, 1), (4, BINARY, "name"), (6, I32, 0)]),
        t_struct([(3, I32, 1), (4, BINARY, "vals"), (5, I32, 1), (6, I32, 3)]),
        t_struct([(3, I32, 2), (4, BINARY, "list"), (5, I32, 1)]),
        t_struct([(1, I32, 1), (3, I32, 1), (4, BINARY, "element")]),
    ]
    footer = t_struct([(1, I32, 1), (2, LIST, (STRUCT, schema)), (3, I64, rows_per_group * groups),
                       (4, LIST, (STRUCT, row_groups)), (6, BINARY, "robometer parquet_handmade.py")])
    f += footer + struct.pack("<I", len(footer)) + b"PAR1"
    with open(out_path, "wb") as out:
        out.write(f)


if __name__ == "__main__":
    main(sys.argv[1], CODECS[sys.argv[2] if len(sys.argv) > 2 else "gzip"])
