"""Mutators for the fuzz suite: each turns a valid model file into a damaged or hostile one, deterministically.

A mutator is ``fn(data: bytes, rng: random.Random) -> bytes``. Generic ones work on any bytes (bit flips,
truncation, chunk duplication/deletion, interesting integers, wrong magic); structure-aware ones know a
container and damage it where a reader trusts it: ZIP headers (CRC, declared sizes, duplicate and
overlapping members, non-UTF-8 names, members that inflate to GiBs), protobuf wire format (length and
varint fields), flatbuffer offsets, the safetensors header, HDF5 superblock fields, pickle opcode arguments
and JSON members. ``mutators_for(kind)`` lists the ones that suit a seed kind.

Nothing here imports a framework: the driver generates cases at the speed of Python byte handling.
"""
from __future__ import annotations

import io
import json
import os
import pickletools
import random
import struct
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

Mutator = Callable[[bytes, random.Random], bytes]

INTERESTING32 = [0, 1, 0x7F, 0x80, 0xFF, 0x7FFF, 0x8000, 0xFFFF, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFE, 0xFFFFFFFF]
INTERESTING64 = INTERESTING32 + [2**32, 2**40, 2**62, 2**63 - 1, 2**63, 2**64 - 1]
MAGICS = [b"PK\x03\x04", b"\x89HDF\r\n\x1a\n", b"\x1c\x00\x00\x00TFL3", b"\x80\x02", b"\x08\x07\x12",
          b"\x10\x00\x00\x00\x00\x00\x00\x00{", b"\x00\x00\x00\x00", b"\xff\xff\xff\xff"]


# ---- generic byte mutators ------------------------------------------------------------------------------
def bit_flip(data: bytes, rng: random.Random) -> bytes:
    b = bytearray(data)
    for _ in range(rng.choice((1, 1, 2, 4, 8, 16))):
        i = rng.randrange(len(b))
        b[i] ^= 1 << rng.randrange(8)
    return bytes(b)


def byte_set(data: bytes, rng: random.Random) -> bytes:
    b = bytearray(data)
    for _ in range(rng.randint(1, 8)):
        b[rng.randrange(len(b))] = rng.choice((0x00, 0x01, 0x7F, 0x80, 0xFF, rng.randrange(256)))
    return bytes(b)


def interesting_int(data: bytes, rng: random.Random) -> bytes:
    b = bytearray(data)
    for _ in range(rng.randint(1, 3)):
        width = rng.choice((4, 8))
        if len(b) < width:
            break
        i = rng.randrange(len(b) - width + 1)
        v = rng.choice(INTERESTING32 if width == 4 else INTERESTING64)
        b[i:i + width] = (v & ((1 << (8 * width)) - 1)).to_bytes(width, rng.choice(("little", "big")))
    return bytes(b)


def truncate(data: bytes, rng: random.Random) -> bytes:
    n = len(data)
    cut = rng.choice((rng.randrange(1, max(2, min(n, 64))), rng.randrange(1, n), n - rng.randint(1, min(n - 1, 64))))
    return data[:max(1, cut)]


def _span(data: bytes, rng: random.Random) -> tuple[int, int]:
    n = len(data)
    size = min(n, rng.choice((1, 4, 16, 64, 512, 4096, max(1, n // 4))))
    start = rng.randrange(0, n - size + 1)
    return start, start + size


def delete_chunk(data: bytes, rng: random.Random) -> bytes:
    a, b = _span(data, rng)
    out = data[:a] + data[b:]
    return out or data[:1]


def duplicate_chunk(data: bytes, rng: random.Random) -> bytes:
    a, b = _span(data, rng)
    times = rng.choice((1, 2, 16))
    return data[:b] + data[a:b] * times + data[b:]


def insert_random(data: bytes, rng: random.Random) -> bytes:
    i = rng.randrange(len(data) + 1)
    return data[:i] + rng.randbytes(rng.choice((1, 8, 100, 4096))) + data[i:]


def append_garbage(data: bytes, rng: random.Random) -> bytes:
    return data + rng.choice((rng.randbytes(rng.randint(1, 2048)), b"\x00" * 4096, data[:512]))


def wrong_magic(data: bytes, rng: random.Random) -> bytes:
    magic = rng.choice(MAGICS)
    return magic + data[len(magic):] if rng.random() < 0.7 else magic + data


GENERIC: dict[str, Mutator] = {
    "bit_flip": bit_flip, "byte_set": byte_set, "interesting_int": interesting_int, "truncate": truncate,
    "delete_chunk": delete_chunk, "duplicate_chunk": duplicate_chunk, "insert_random": insert_random,
    "append_garbage": append_garbage, "wrong_magic": wrong_magic,
}


# ---- ZIP ------------------------------------------------------------------------------------------------
@dataclass
class Member:
    """One ZIP member to write: ``data`` is the stored bytes (already compressed when ``method`` is 8 and
    ``raw`` is True), ``crc``/``csize``/``usize`` are what the headers declare (None: computed)."""
    name: bytes
    data: bytes
    method: int = 0
    raw: bool = False
    crc: int | None = None
    csize: int | None = None
    usize: int | None = None
    flags: int = 0
    usize_true: int | None = None
    local_name: bytes | None = None


def read_members(data: bytes) -> list[Member]:
    """The members of a valid archive, in order, with their uncompressed contents and methods."""
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        return [Member(i.filename.encode("utf-8"), z.read(i), i.compress_type if i.compress_type in (0, 8) else 8)
                for i in z.infolist()]


def write_zip(members: list[Member], *, align: int = 64, central: list[tuple[int, int]] | None = None,
              drop_central: bool = False, local_overrides: dict[int, dict] | None = None) -> bytes:
    """A ZIP archive written by hand, so that every header field can lie.

    Members are aligned to ``align`` bytes with an extra field (as torch's writer does). ``central``
    (list of (member index, local header index)) lets central entries point at another member's local
    header (overlapping or duplicated members). ``local_overrides`` patches a local header's fields.
    """
    out = bytearray()
    offsets, entries = [], []
    for k, m in enumerate(members):
        if m.raw or m.method == 0:
            stored = m.data
            crc = zlib.crc32(m.data) if m.crc is None and not m.raw else m.crc
        else:
            c = zlib.compressobj(6, zlib.DEFLATED, -15)
            stored = c.compress(m.data) + c.flush()
            crc = zlib.crc32(m.data) if m.crc is None else m.crc
        crc = crc if crc is not None else 0
        usize = m.usize if m.usize is not None else (m.usize_true if m.raw else len(m.data))
        csize = m.csize if m.csize is not None else len(stored)
        lname = m.local_name if m.local_name is not None else m.name
        ov = (local_overrides or {}).get(k, {})
        header_len = 30 + len(lname)
        pad = (-(len(out) + header_len + 4)) % align if align else 0
        extra = (b"FB" + struct.pack("<H", pad) + b"Z" * pad) if align else b""
        offsets.append(len(out))
        out += struct.pack("<IHHHHHIIIHH", 0x04034B50, 20, ov.get("flags", m.flags), ov.get("method", m.method), 0,
                           0x21, ov.get("crc", crc) & 0xFFFFFFFF, ov.get("csize", csize) & 0xFFFFFFFF,
                           ov.get("usize", usize) & 0xFFFFFFFF, len(lname), len(extra))
        out += lname + extra + stored
        entries.append((m, crc, csize, usize))
    if drop_central:
        return bytes(out)
    cd_start = len(out)
    pairs = central if central is not None else [(k, k) for k in range(len(members))]
    for k, loc in pairs:
        m, crc, csize, usize = entries[k]
        out += struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 20, 20, m.flags, m.method, 0, 0x21, crc & 0xFFFFFFFF,
                           csize & 0xFFFFFFFF, usize & 0xFFFFFFFF, len(m.name), 0, 0, 0, 0, 0, offsets[loc])
        out += m.name
    cd_size = len(out) - cd_start
    out += struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, len(pairs), len(pairs), cd_size, cd_start, 0)
    return bytes(out)


# A member that inflates to BOMB_BYTES of zeros from a few MB: made once, streaming, cached on disk.
BOMB_BYTES = 3 * 1024**3


def bomb_stream(cache_dir: str | os.PathLike, size: int = BOMB_BYTES) -> tuple[bytes, int]:
    """(raw deflate stream of ``size`` zero bytes, its CRC-32), generated in 1 MiB steps and cached."""
    cache = Path(cache_dir) / f"zeros-{size}.deflate"
    meta = cache.with_suffix(".json")
    if cache.exists() and meta.exists():
        return cache.read_bytes(), json.loads(meta.read_text())["crc"]
    cache.parent.mkdir(parents=True, exist_ok=True)
    c = zlib.compressobj(9, zlib.DEFLATED, -15, 9)
    chunk = bytes(1 << 20)
    parts, crc = [], 0
    left = size
    while left:
        n = min(left, len(chunk))
        block = chunk if n == len(chunk) else chunk[:n]
        parts.append(c.compress(block))
        crc = zlib.crc32(block, crc)
        left -= n
    parts.append(c.flush())
    stream = b"".join(parts)
    tmp = cache.with_suffix(f".tmp{os.getpid()}")
    tmp.write_bytes(stream)
    os.replace(tmp, cache)
    meta.write_text(json.dumps({"crc": crc, "size": size}))
    return stream, crc


class ZipMutators:
    """ZIP-level damage. ``inner`` mutates one member's content (re-zipped with a correct CRC, so the
    damage reaches the parser inside); ``bomb_dir`` holds the cached zero stream."""

    def __init__(self, bomb_dir: str, inner: Callable[[str, bytes, random.Random], bytes]):
        self.bomb_dir = bomb_dir
        self.inner = inner

    def table(self) -> dict[str, Mutator]:
        return {"zip_member": self.member, "zip_bad_crc": self.bad_crc, "zip_huge_sizes": self.huge_sizes,
                "zip_dup_names": self.dup_names, "zip_overlap": self.overlap, "zip_non_utf8": self.non_utf8,
                "zip_drop_member": self.drop_member, "zip_no_central": self.no_central,
                "zip_bomb": self.bomb, "zip_bomb_lying": self.bomb_lying, "zip_slip_name": self.slip_name}

    @staticmethod
    def _pick(members: list[Member], rng: random.Random) -> int:
        # favour the members readers parse (json, pkl, pb, h5, model files) over raw weight blobs
        weights = [5 if m.name.endswith((b".json", b".pkl", b".h5", b".pb", b".py", b"archive_format")) else 1
                   for m in members]
        return rng.choices(range(len(members)), weights)[0]

    def member(self, data: bytes, rng: random.Random) -> bytes:
        ms = read_members(data)
        k = self._pick(ms, rng)
        ms[k].data = self.inner(ms[k].name.decode("utf-8", "replace"), ms[k].data, rng) if ms[k].data else b"\x00"
        return write_zip(ms)

    def bad_crc(self, data: bytes, rng: random.Random) -> bytes:
        ms = read_members(data)
        ms[self._pick(ms, rng)].crc = rng.getrandbits(32)
        return write_zip(ms)

    def huge_sizes(self, data: bytes, rng: random.Random) -> bytes:
        ms = read_members(data)
        k = self._pick(ms, rng)
        big = rng.choice((0xFFFFFFFF, 0x7FFFFFFF, 0xFFFFFFFE, 2**31 + 12345, len(ms[k].data) * 1000 + 7))
        field = rng.choice(("csize", "usize", "both", "local"))
        if field == "local":
            return write_zip(ms, local_overrides={k: {"csize": big, "usize": big}})
        if field in ("csize", "both"):
            ms[k].csize = big
        if field in ("usize", "both"):
            ms[k].usize = big
        return write_zip(ms)

    def dup_names(self, data: bytes, rng: random.Random) -> bytes:
        ms = read_members(data)
        k = self._pick(ms, rng)
        copy = Member(ms[k].name, rng.choice((b"", b"{}", ms[k].data[: len(ms[k].data) // 2], rng.randbytes(64))))
        ms.insert(rng.randrange(len(ms) + 1), copy)
        return write_zip(ms)

    def overlap(self, data: bytes, rng: random.Random) -> bytes:
        # central entries that point at another member's local header: overlapping / aliased members
        ms = read_members(data)
        n = len(ms)
        target = self._pick(ms, rng)
        pairs = [(k, target if rng.random() < 0.3 else k) for k in range(n)]
        for m in ms:
            m.local_name = ms[target].name if rng.random() < 0.5 else None
        return write_zip(ms, central=pairs)

    def non_utf8(self, data: bytes, rng: random.Random) -> bytes:
        ms = read_members(data)
        k = self._pick(ms, rng)
        bad = rng.choice((b"\xff\xfe", b"\xc3\x28", b"\xed\xa0\x80", b"\x80"))
        i = rng.randrange(len(ms[k].name) + 1)
        ms[k].name = ms[k].name[:i] + bad + ms[k].name[i:]
        ms[k].flags = rng.choice((0, 0x800))  # 0x800 claims UTF-8
        return write_zip(ms)

    def drop_member(self, data: bytes, rng: random.Random) -> bytes:
        ms = read_members(data)
        del ms[self._pick(ms, rng)]
        return write_zip(ms) if ms else data[:100]

    def no_central(self, data: bytes, rng: random.Random) -> bytes:
        return write_zip(read_members(data), drop_central=True)

    def _bomb(self, data: bytes, rng: random.Random, lie: bool) -> bytes:
        ms = read_members(data)
        k = self._pick(ms, rng)
        stream, crc = bomb_stream(self.bomb_dir)
        ms[k] = Member(ms[k].name, stream, 8, raw=True, crc=crc, usize_true=BOMB_BYTES,
                       usize=(len(ms[k].data) or 100) if lie else None)
        return write_zip(ms)

    def bomb(self, data: bytes, rng: random.Random) -> bytes:
        return self._bomb(data, rng, lie=False)

    def bomb_lying(self, data: bytes, rng: random.Random) -> bytes:
        return self._bomb(data, rng, lie=True)

    def slip_name(self, data: bytes, rng: random.Random) -> bytes:
        ms = read_members(data)
        k = self._pick(ms, rng)
        prefix = rng.choice((b"../../", b"/", b"../" * 20, b"..\\..\\"))
        ms.append(Member(prefix + ms[k].name, ms[k].data))
        return write_zip(ms)


# ---- protobuf wire format -------------------------------------------------------------------------------
def _varint(data: bytes, i: int) -> tuple[int, int]:
    v = shift = 0
    while True:
        if i >= len(data) or shift > 63:
            raise ValueError("bad varint")
        b = data[i]
        v |= (b & 0x7F) << shift
        i += 1
        shift += 7
        if not b & 0x80:
            return v, i


def enc_varint(v: int) -> bytes:
    v &= (1 << 64) - 1
    out = bytearray()
    while True:
        b = v & 0x7F
        v >>= 7
        if v:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


@dataclass
class PbField:
    start: int        # offset of the tag
    value_at: int     # offset of the varint value / length prefix
    payload: int      # offset of the payload (length-delimited) or end of the value
    end: int
    wire: int
    depth: int


def pb_fields(data: bytes, start: int = 0, end: int | None = None, depth: int = 0, out=None, limit: int = 20000):
    """Every field of a protobuf message, recursing into length-delimited payloads that parse as messages."""
    out = [] if out is None else out
    end = len(data) if end is None else end
    i = start
    local = []
    try:
        while i < end:
            tag, j = _varint(data, i)
            wire, fno = tag & 7, tag >> 3
            if fno == 0:
                raise ValueError
            if wire == 0:
                _, k = _varint(data, j)
                local.append(PbField(i, j, k, k, 0, depth))
            elif wire == 1:
                local.append(PbField(i, j, j + 8, j + 8, 1, depth))
                k = j + 8
            elif wire == 5:
                local.append(PbField(i, j, j + 4, j + 4, 5, depth))
                k = j + 4
            elif wire == 2:
                n, p = _varint(data, j)
                k = p + n
                local.append(PbField(i, j, p, k, 2, depth))
            else:
                raise ValueError
            if k > end:
                raise ValueError
            i = k
    except ValueError:
        return out if depth else out + local
    out.extend(local)
    if depth < 12:
        for f in local:
            if f.wire == 2 and f.end - f.payload >= 2 and len(out) < limit:
                pb_fields(data, f.payload, f.end, depth + 1, out, limit)
    return out


def _pb_pick(data: bytes, rng: random.Random, wire: int | None = None) -> PbField | None:
    fs = [f for f in pb_fields(data) if wire is None or f.wire == wire]
    return rng.choice(fs) if fs else None


def pb_huge_length(data: bytes, rng: random.Random) -> bytes:
    f = _pb_pick(data, rng, 2)
    if f is None:
        return interesting_int(data, rng)
    n = rng.choice((2**31 - 1, 2**32 - 1, 2**63 - 1, 2**64 - 1, (f.end - f.payload) + rng.randint(1, 64), 0))
    return data[:f.value_at] + enc_varint(n) + data[f.payload:]


def pb_huge_varint(data: bytes, rng: random.Random) -> bytes:
    f = _pb_pick(data, rng, 0)
    if f is None:
        return interesting_int(data, rng)
    v = rng.choice((2**31 - 1, 2**32, 2**62, 2**63 - 1, 2**64 - 1, 2**40))
    return data[:f.value_at] + enc_varint(v) + data[f.end:]


def pb_duplicate_field(data: bytes, rng: random.Random) -> bytes:
    f = _pb_pick(data, rng)
    if f is None or f.depth > 0:   # a nested duplicate would need the parents' lengths fixed: top level only
        fs = [x for x in pb_fields(data) if x.depth == 0]
        if not fs:
            return duplicate_chunk(data, rng)
        f = rng.choice(fs)
    times = rng.choice((1, 2, 50))
    return data[:f.end] + data[f.start:f.end] * times + data[f.end:]


def pb_wire_type(data: bytes, rng: random.Random) -> bytes:
    f = _pb_pick(data, rng)
    if f is None:
        return bit_flip(data, rng)
    tag, j = _varint(data, f.start)
    new = (tag & ~7) | rng.choice([w for w in (0, 1, 2, 3, 4, 5, 6, 7) if w != (tag & 7)])
    return data[:f.start] + enc_varint(new) + data[j:]


def pb_nest_bomb(data: bytes, rng: random.Random) -> bytes:
    # a field wrapped in thousands of nested length-delimited levels of the same field number
    fs = [x for x in pb_fields(data) if x.depth == 0 and x.wire == 2]
    if not fs:
        return data
    f = rng.choice(fs)
    tag = data[f.start:f.value_at]
    inner = data[f.payload:f.end]
    for _ in range(rng.choice((200, 3000))):  # the outermost wrap is the field itself
        inner = tag + enc_varint(len(inner)) + inner
    return data[:f.start] + inner + data[f.end:]


PROTOBUF: dict[str, Mutator] = {"pb_huge_length": pb_huge_length, "pb_huge_varint": pb_huge_varint,
                                "pb_duplicate_field": pb_duplicate_field, "pb_wire_type": pb_wire_type,
                                "pb_nest_bomb": pb_nest_bomb}


# ---- flatbuffers (TFLite) -------------------------------------------------------------------------------
def fb_offset(data: bytes, rng: random.Random) -> bytes:
    """Patch an aligned uint32 that looks like an offset or a vector length (small, in range)."""
    b = bytearray(data)
    n = len(b)
    cands = [i for i in range(0, n - 4, 4) if 0 < struct.unpack_from("<I", b, i)[0] < n]
    for _ in range(rng.randint(1, 3)):
        i = rng.choice(cands) if cands else rng.randrange(0, n - 4, 4)
        v = rng.choice((0, 4, n, n - i, 0x7FFFFFFF, 0xFFFFFFFF, 0x80000000, (-i) & 0xFFFFFFFF,
                        rng.randrange(n), 0x10000000))
        struct.pack_into("<I", b, i, v)
    return bytes(b)


def fb_root(data: bytes, rng: random.Random) -> bytes:
    return struct.pack("<I", rng.choice((0, 4, 8, len(data), 0xFFFFFFFF, len(data) - 4))) + data[4:]


def fb_vtable(data: bytes, rng: random.Random) -> bytes:
    """Patch 16-bit vtable entries (field offsets / vtable sizes)."""
    b = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        i = rng.randrange(0, len(b) - 2, 2)
        struct.pack_into("<H", b, i, rng.choice((0, 4, 0xFFFF, 0x7FFF, rng.randrange(65536))))
    return bytes(b)


FLATBUFFER: dict[str, Mutator] = {"fb_offset": fb_offset, "fb_root": fb_root, "fb_vtable": fb_vtable}


# ---- JSON members / headers -----------------------------------------------------------------------------
def _json_paths(obj, path=(), out=None, limit=5000):
    out = [] if out is None else out
    if len(out) >= limit:
        return out
    out.append(path)
    if isinstance(obj, dict):
        for k, v in obj.items():
            _json_paths(v, path + (k,), out, limit)
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            _json_paths(v, path + (i,), out, limit)
    return out


def _json_value(rng: random.Random, old):
    return rng.choice([
        2**63, -1, -(2**63), 2**64 + 5, 10**18, 0, 1.5e308, "A" * rng.choice((1, 100000)), None, True, [], {},
        [2**31, 2**31, 2**31], [-1, -5], {"class_name": "Lambda", "config": {}}, "../../../../etc/passwd",
        "x" if not isinstance(old, str) else old[::-1], [old, old] if not isinstance(old, (dict, list)) else old,
        "__import__('os').system('true')", {"module": "os", "class_name": "system", "config": {}},
    ])


def json_mutate(data: bytes, rng: random.Random) -> bytes:
    try:
        obj = json.loads(data)
    except (ValueError, UnicodeDecodeError):
        return bit_flip(data, rng)
    for _ in range(rng.randint(1, 3)):
        paths = _json_paths(obj)
        p = rng.choice(paths)
        if not p:
            obj = _json_value(rng, obj) if rng.random() < 0.2 else obj
            continue
        parent = obj
        for k in p[:-1]:
            parent = parent[k]
        if rng.random() < 0.25 and isinstance(parent, dict):
            del parent[p[-1]]
        else:
            parent[p[-1]] = _json_value(rng, parent[p[-1]])
    return json.dumps(obj).encode()


def json_deep(data: bytes, rng: random.Random) -> bytes:
    depth = rng.choice((1000, 100000))
    return (b"[" * depth + b"]" * depth) if rng.random() < 0.5 else (b'{"a":' * depth + b"1" + b"}" * depth)


JSON: dict[str, Mutator] = {"json_mutate": json_mutate, "json_deep": json_deep}


# ---- safetensors ----------------------------------------------------------------------------------------
def st_header_length(data: bytes, rng: random.Random) -> bytes:
    (n,) = struct.unpack_from("<Q", data)
    v = rng.choice((0, 1, n - 1, n + 1, len(data), len(data) - 8, 2**31, 2**40, 2**63 - 1, 2**64 - 1))
    return struct.pack("<Q", v) + data[8:]


def st_header_json(data: bytes, rng: random.Random) -> bytes:
    (n,) = struct.unpack_from("<Q", data)
    header, body = data[8:8 + n], data[8 + n:]
    try:
        obj = json.loads(header)
    except ValueError:
        return bit_flip(data, rng)
    keys = [k for k in obj if k != "__metadata__"]
    if keys:
        k = rng.choice(keys)
        t = obj[k]
        what = rng.choice(("shape", "offsets", "dtype", "json"))
        if what == "shape":
            t["shape"] = rng.choice(([2**40, 2**40], [2**31, 2**31, 2**31], [-1], [0, 2**62], ["a"], 7))
        elif what == "offsets":
            size = len(body)
            t["data_offsets"] = rng.choice(([0, size + 1000], [size, 0], [-8, 8], [0, 2**63], [2**62, 2**62 + 4],
                                            [0], "x"))
        elif what == "dtype":
            t["dtype"] = rng.choice(("Q99", "", "F8_E8M0", "object", 5))
        else:
            obj = json.loads(json_mutate(json.dumps(obj).encode(), rng))
    raw = json.dumps(obj).encode()
    if rng.random() < 0.2:
        raw = json_deep(raw, rng)
    return struct.pack("<Q", len(raw)) + raw + body


SAFETENSORS: dict[str, Mutator] = {"st_header_length": st_header_length, "st_header_json": st_header_json}


# ---- HDF5 -----------------------------------------------------------------------------------------------
def h5_superblock(data: bytes, rng: random.Random) -> bytes:
    b = bytearray(data)
    # superblock v0/v2/v3: version byte 8, sizes of offsets/lengths at 13/14 (v0) or 9/10 (v2+), addresses
    # (base, extension, end-of-file, root) after them; patch one of them
    choice = rng.choice(("sizes", "addr", "version"))
    if choice == "sizes":
        pos = rng.choice((9, 10, 13, 14))
        b[pos] = rng.choice((0, 1, 3, 16, 255))
    elif choice == "version":
        b[8] = rng.choice((1, 4, 9, 255))
    else:
        start = rng.choice((12, 24, 32, 40, 48, 56, 64))
        if start + 8 <= len(b):
            struct.pack_into("<Q", b, start, rng.choice(INTERESTING64))
    return bytes(b)


def h5_field(data: bytes, rng: random.Random) -> bytes:
    """Patch aligned 8-byte values that look like in-file addresses or lengths."""
    b = bytearray(data)
    n = len(b)
    cands = [i for i in range(0, n - 8, 8) if 0 < struct.unpack_from("<Q", b, i)[0] < n]
    for _ in range(rng.randint(1, 4)):
        i = rng.choice(cands) if cands else rng.randrange(0, n - 8)
        struct.pack_into("<Q", b, i, rng.choice(INTERESTING64 + [n, n - i, rng.randrange(n)]))
    return bytes(b)


HDF5: dict[str, Mutator] = {"h5_superblock": h5_superblock, "h5_field": h5_field}


# ---- pickles --------------------------------------------------------------------------------------------
_LEN_OPS = {"BINUNICODE": 4, "BINBYTES": 4, "BINSTRING": 4, "LONG4": 4, "BINBYTES8": 8, "BINUNICODE8": 8,
            "BYTEARRAY8": 8, "FRAME": 8, "LONG_BINPUT": 4, "LONG_BINGET": 4, "SHORT_BINBYTES": 1,
            "SHORT_BINUNICODE": 1, "SHORT_BINSTRING": 1, "BINPUT": 1, "BINGET": 1, "LONG1": 1, "BININT": 4}


def _pickle_ops(data: bytes):
    ops = []
    try:
        for op, arg, pos in pickletools.genops(data):
            ops.append((op, arg, pos))
    except Exception:
        pass
    return ops


def pk_huge_arg(data: bytes, rng: random.Random) -> bytes:
    ops = [(op, pos) for op, _, pos in _pickle_ops(data) if op.name in _LEN_OPS]
    if not ops:
        return interesting_int(data, rng)
    op, pos = rng.choice(ops)
    width = _LEN_OPS[op.name]
    big = {1: (0xFF, 0x80), 4: (0xFFFFFFFF, 0x7FFFFFFF, 10**9, 0x80000000), 8: (2**63 - 1, 2**40, 2**64 - 1)}[width]
    v = rng.choice(big)
    return data[:pos + 1] + v.to_bytes(width, "little") + data[pos + 1 + width:]


def pk_memo_bomb(data: bytes, rng: random.Random) -> bytes:
    ops = _pickle_ops(data)
    if not ops:
        return data
    _, _, pos = rng.choice(ops[1:] or ops)
    # push something, then store it at memo index 10**9 (a list-backed memo would grow to 10**9 slots)
    return data[:pos] + b"N" + b"r" + struct.pack("<I", rng.choice((10**9, 2**32 - 1, 2**31))) + b"0" + data[pos:]


def pk_swap_opcode(data: bytes, rng: random.Random) -> bytes:
    ops = _pickle_ops(data)
    if not ops:
        return bit_flip(data, rng)
    _, _, pos = rng.choice(ops)
    codes = [o.code.encode("latin-1") for o in pickletools.opcodes]
    return data[:pos] + rng.choice(codes) + data[pos + 1:]


def pk_truncate_op(data: bytes, rng: random.Random) -> bytes:
    ops = _pickle_ops(data)
    if len(ops) < 2:
        return truncate(data, rng)
    _, _, pos = rng.choice(ops[1:])
    return data[:pos + rng.randint(0, 3)]


_GLOBALS = [b"collections\nOrderedDict\n", b"torch._utils\n_rebuild_tensor_v2\n", b"builtins\nset\n",
            b"torch\nFloatStorage\n", b"builtins\ngetattr\n", b"torch._utils\n_rebuild_parameter\n",
            b"numpy.core.multiarray\n_reconstruct\n", b"torch\nSize\n", b"_codecs\nencode\n",
            b"torch.nn.modules.linear\nLinear\n", b"__builtin__\nset\n", b"builtins\neval\n"]


def pk_global_swap(data: bytes, rng: random.Random) -> bytes:
    """Replace a GLOBAL reference by another allowed or forbidden name (type confusion in rebuilders)."""
    ops = [(op, arg, pos) for op, arg, pos in _pickle_ops(data) if op.name == "GLOBAL"]
    if not ops:
        return pk_swap_opcode(data, rng)
    op, arg, pos = rng.choice(ops)
    old_len = len(arg.replace(" ", "\n", 1)) + 1  # "module name" -> "module\nname\n"
    return data[:pos + 1] + rng.choice(_GLOBALS) + data[pos + 1 + old_len:]


PICKLE: dict[str, Mutator] = {"pk_huge_arg": pk_huge_arg, "pk_memo_bomb": pk_memo_bomb,
                              "pk_swap_opcode": pk_swap_opcode, "pk_truncate_op": pk_truncate_op,
                              "pk_global_swap": pk_global_swap}


# ---- by kind --------------------------------------------------------------------------------------------
def inner_for_name(name: str) -> dict[str, Mutator]:
    """Mutators for a ZIP member, by its name."""
    if name.endswith(".pkl") or name.endswith("/model.pt") or "/constants/" in name and name.endswith(".pt"):
        return {**PICKLE, "bit_flip": bit_flip, "truncate": truncate}
    if name.endswith(".json"):
        return {**JSON, "bit_flip": bit_flip, "truncate": truncate}
    if name.endswith(".h5"):
        return {**HDF5, "bit_flip": bit_flip, "truncate": truncate, "delete_chunk": delete_chunk}
    if name.endswith(".py") or "/code/" in name or name.endswith(".debug_pkl"):
        return {"bit_flip": bit_flip, "truncate": truncate, "insert_random": insert_random,
                "duplicate_chunk": duplicate_chunk, **({} if not name.endswith(".debug_pkl") else PICKLE)}
    return {"bit_flip": bit_flip, "truncate": truncate, "interesting_int": interesting_int,
            "delete_chunk": delete_chunk}


def mutate_member(name: str, data: bytes, rng: random.Random) -> bytes:
    table = inner_for_name(name)
    return table[rng.choice(sorted(table))](data, rng)


# Weighted mutator names per seed kind: structure-aware ones first.
KIND_MUTATORS: dict[str, dict[str, int]] = {
    "zip": {"zip_member": 30, "zip_bad_crc": 3, "zip_huge_sizes": 6, "zip_dup_names": 4, "zip_overlap": 4,
            "zip_non_utf8": 3, "zip_drop_member": 5, "zip_no_central": 2, "zip_bomb": 1, "zip_bomb_lying": 1,
            "zip_slip_name": 2},
    "protobuf": {"pb_huge_length": 8, "pb_huge_varint": 8, "pb_duplicate_field": 3, "pb_wire_type": 4,
                 "pb_nest_bomb": 2},
    "flatbuffer": {"fb_offset": 14, "fb_root": 3, "fb_vtable": 8},
    "safetensors": {"st_header_length": 6, "st_header_json": 14},
    "hdf5": {"h5_superblock": 6, "h5_field": 14},
    "pickle": {"pk_huge_arg": 8, "pk_memo_bomb": 3, "pk_swap_opcode": 6, "pk_truncate_op": 3, "pk_global_swap": 6},
}
GENERIC_WEIGHTS = {"bit_flip": 6, "byte_set": 3, "interesting_int": 4, "truncate": 4, "delete_chunk": 2,
                   "duplicate_chunk": 2, "insert_random": 1, "append_garbage": 1, "wrong_magic": 1}


def all_mutators(bomb_dir: str) -> dict[str, Mutator]:
    return {**GENERIC, **ZipMutators(bomb_dir, mutate_member).table(), **PROTOBUF, **FLATBUFFER, **JSON,
            **SAFETENSORS, **HDF5, **PICKLE}


def mutators_for(kind: str) -> dict[str, int]:
    """Weighted mutator names for a seed kind (structure-aware 2/3 of the time, generic 1/3)."""
    special = KIND_MUTATORS.get(kind, {})
    total_special = sum(special.values()) or 1
    total_generic = sum(GENERIC_WEIGHTS.values())
    out = {k: v * 2 * total_generic / total_special for k, v in special.items()} if special else {}
    for k, v in GENERIC_WEIGHTS.items():
        out[k] = out.get(k, 0) + v
    return out
