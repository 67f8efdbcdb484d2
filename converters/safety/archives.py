"""ZIP archives (.pt2, TorchScript, torch.save, .keras) opened with their members checked first.

Every member's declared size and compression ratio is checked before anything is read, so a small
archive cannot inflate into gigabytes ("zip bomb"); readers then read members only through
:func:`read_member`, which also caps what it reads. ``zipfile`` itself stops at a member's declared size
(more data fails its CRC), so a checked declaration is a real bound.
"""
from __future__ import annotations

import os
import stat
import zipfile
import zlib

from ..errors import CorruptFile, ResourceLimit, text_of

# A member may inflate to this many times its stored size, once it is past MIN_BOMB_SIZE. Real models
# compress 1-5x (weights are noise; zero-filled buffers reach a few hundred); bombs reach 1000x and more.
MAX_RATIO = 200
MIN_BOMB_SIZE = 256 * 1024 ** 2
# One member is never declared larger than this (no model file format needs a 64 GiB member).
MAX_MEMBER = 64 * 1024 ** 3
MAX_MEMBERS = 200_000


def _mib(n: int) -> str:
    return f"{n / 1024 ** 3:.1f} GiB" if n >= 1024 ** 3 else f"{n / 1024 ** 2:.1f} MiB"


def require_regular_file(path: str, what: str = "file") -> os.stat_result:
    """The ``os.stat`` of ``path`` if it is a regular file; a FIFO, device or socket is refused (reading
    one can block forever or never end)."""
    try:
        st = os.stat(path)
    except OSError as exc:
        raise CorruptFile(f"{path}: cannot be read ({exc.strerror or exc})") from None
    if not stat.S_ISREG(st.st_mode):
        kind = "a FIFO (named pipe)" if stat.S_ISFIFO(st.st_mode) else \
            "a device" if stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode) else \
            "a socket" if stat.S_ISSOCK(st.st_mode) else "not a regular file"
        raise CorruptFile(f"{path}: is {kind}, not a {what}; open the model file itself")
    return st


def check_members(path: str, z: zipfile.ZipFile, what: str = "archive") -> None:
    """Refuse an archive whose members declare impossible or bomb-like sizes (one-line errors)."""
    infos = z.infolist()
    if len(infos) > MAX_MEMBERS:
        raise ResourceLimit(f"{path}: the {what} lists {len(infos):,} members (more than {MAX_MEMBERS:,}); "
                            f"it is not a model file Tensorbridge opens")
    archive_size = os.path.getsize(path)
    for info in infos:
        size, packed = info.file_size, info.compress_size
        if info.compress_type == zipfile.ZIP_STORED:
            if size != packed or packed > archive_size:
                raise CorruptFile(f"{path}: member '{_safe(info.filename)}' of the {what} declares "
                                  f"{size:,} bytes but stores {packed:,}; the file is damaged")
            continue
        if size > MAX_MEMBER:
            raise ResourceLimit(f"{path}: member '{_safe(info.filename)}' of the {what} declares "
                                f"{_mib(size)} once inflated; refusing to read it")
        if size > MIN_BOMB_SIZE and size > MAX_RATIO * max(packed, 1):
            raise ResourceLimit(f"{path}: member '{_safe(info.filename)}' of the {what} would inflate from "
                                f"{_mib(packed)} to {_mib(size)} ({size // max(packed, 1):,}x); refusing it "
                                f"as a zip bomb")
        if packed > archive_size:
            raise CorruptFile(f"{path}: member '{_safe(info.filename)}' of the {what} claims more data than "
                              f"the file holds; the file is damaged or truncated")


def _safe(name: str) -> str:
    return "".join(c if c.isprintable() else "?" for c in name)[:120]


def open_zip(path: str, what: str = "archive") -> zipfile.ZipFile:
    """``zipfile.ZipFile(path)`` with its members checked; damage becomes a one-line :class:`CorruptFile`."""
    require_regular_file(path, what)
    try:
        z = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, EOFError, OSError, ValueError, UnicodeDecodeError, NotImplementedError,
            OverflowError) as exc:
        raise CorruptFile(f"{path}: damaged or truncated {what} ({_reason(exc)}); re-save or re-download it") \
            from None
    try:
        check_members(path, z, what)
    except BaseException:
        z.close()
        raise
    return z


def read_member(path: str, z: zipfile.ZipFile, name: str, limit: int, what: str = "archive") -> bytes:
    """The bytes of one member, refusing members declared larger than ``limit`` (before reading)."""
    try:
        info = z.getinfo(name)
    except KeyError:
        raise CorruptFile(f"{path}: the {what} has no member '{_safe(name)}'; the file is damaged") from None
    if info.file_size > limit:
        raise ResourceLimit(f"{path}: member '{_safe(name)}' of the {what} is {_mib(info.file_size)} (more than "
                            f"the {_mib(limit)} this part of a model ever needs); refusing to read it")
    try:
        with z.open(info) as f:
            # Ask for the declared size only: zipfile inflates as much as it is asked for before it
            # trims to the declared size, so a member that lies about its size (218 bytes declared,
            # 3 GiB of zeros inside) must not be read with a larger request. Reading to the declared
            # end makes zipfile check the CRC, which a lying member fails.
            data = f.read(info.file_size)
            extra = f.read(1)
    except (zipfile.BadZipFile, EOFError, OSError, zlib.error, ValueError, NotImplementedError,
            RuntimeError) as exc:
        raise CorruptFile(f"{path}: member '{_safe(name)}' of the {what} is damaged ({_reason(exc)}); "
                          f"re-save or re-download it") from None
    if extra or len(data) != info.file_size:
        raise CorruptFile(f"{path}: member '{_safe(name)}' of the {what} does not hold the {info.file_size:,} "
                          f"bytes it declares; the file is damaged or forged")
    return data


def _reason(exc: BaseException) -> str:
    text = text_of(exc, 160)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
