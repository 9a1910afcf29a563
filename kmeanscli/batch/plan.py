"""Planning a batch: which files, where each output goes, and what is already up to date."""

from __future__ import annotations

import fnmatch
import os
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TextIO

from ..errors import InputError, OutputError
from .model import BatchOptions, FileResult, Plan, Task

__all__ = ["image_extensions", "plan", "read_path_list"]

_NOT_REGULAR = "not a regular file (a FIFO, socket, device or broken link); not read"


def image_extensions() -> frozenset[str]:
    """File extensions (lower case, with the dot) of the image formats Pillow reads."""
    from PIL import Image

    Image.init()
    return frozenset(ext for ext, fmt in Image.registered_extensions().items() if fmt in Image.OPEN)


def read_path_list(stream: TextIO) -> list[str]:
    """Newline-separated paths (blank lines ignored), as ``find`` prints them."""
    return [line.rstrip("\r\n") for line in stream if line.strip()]


def _matcher(globs: Sequence[str] | None) -> Callable[[str], bool]:
    if globs:
        patterns = [g.lower() for g in globs]
        return lambda name: any(fnmatch.fnmatchcase(name.lower(), p) for p in patterns)
    exts = image_extensions()
    return lambda name: os.path.splitext(name)[1].lower() in exts


def _regular_file(entry: os.DirEntry[str]) -> bool:
    """A regular file, or a symlink to one; never blocks (FIFOs, sockets and devices are
    not opened) and never raises (a symlink loop or a dangling link is no file)."""
    try:
        return entry.is_file()
    except OSError:
        return False


def _walk(
    root: Path, recursive: bool, match: Callable[[str], bool], skip: str | None
) -> list[Path]:
    """The regular files in ``root`` (and below, with ``recursive``) whose name matches,
    sorted, hidden ones left out. Symlinks to files are followed; symlinked folders are not
    descended into, so a link loop cannot make the walk go round."""
    found: list[Path] = []
    folders = [root]
    while folders:
        folder = folders.pop()
        try:
            with os.scandir(folder) as it:
                entries = sorted(it, key=lambda e: e.name)
        except OSError:
            continue  # an unreadable sub-folder: nothing to take from it
        below = []
        for e in entries:
            if e.name.startswith("."):
                continue
            if recursive and e.is_dir(follow_symlinks=False):
                if os.path.abspath(e.path) != skip:
                    below.append(folder / e.name)
            elif match(e.name) and _regular_file(e):
                found.append(folder / e.name)
        folders.extend(reversed(below))  # depth first, in name order
    return sorted(found, key=lambda f: f.relative_to(root).parts)


def _mtime_ns(path: Path) -> int | None:
    try:
        return path.stat().st_mtime_ns
    except OSError:
        return None


def _newest_output(
    folder: Path, stem: str, ext: str, listings: dict[Path, list[os.DirEntry[str]]]
) -> int | None:
    """The newest modification time of ``<stem>-k<digits><ext>`` in ``folder``."""
    if folder not in listings:
        try:
            with os.scandir(folder) as it:
                listings[folder] = list(it)
        except OSError:
            listings[folder] = []
    pattern = re.compile(rf"{re.escape(stem)}-k\d+{re.escape(ext)}")
    times = [e.stat().st_mtime_ns for e in listings[folder] if pattern.fullmatch(e.name)]
    return max(times, default=None)


def plan(
    inputs: Sequence[str | os.PathLike[str]],
    outdir: str | os.PathLike[str],
    options: BatchOptions | None = None,
    *,
    recursive: bool = False,
    globs: Sequence[str] | None = None,
    force: bool = False,
) -> Plan:
    """Find the input files and decide where each goes and whether it needs work.

    Parameters
    ----------
    inputs : sequence of paths
        Image files and folders. Files are taken as given; folders are searched for files
        matching ``globs`` (``recursive`` descends into sub-folders; hidden files and
        folders are left out).
    outdir : path
        The output folder. A folder input's tree is mirrored under it; the given files keep
        their paths relative to their deepest common folder. Each output is named as
        ``compress`` names it: ``<stem>-k<K>.<ext>`` (with quality targets, K is the one
        chosen for the file, so the planned output is the pattern ``<stem>-k*.<ext>``).
    options : BatchOptions, optional
    recursive : bool, optional
    globs : sequence of str, optional
        File-name patterns (``fnmatch``, case-insensitive) for folder searches; default: the
        extensions of the image formats Pillow reads.
    force : bool, optional
        Redo outputs that are newer than their input (by default they are skipped).

    Returns
    -------
    Plan

    Raises
    ------
    InputError
        No input file at all (and the first missing path when none exists). A path that does
        not exist among others is a failed file in the plan's ``failed``.
    OutputError
        ``outdir`` exists and is not a folder.
    """
    options = options or BatchOptions()
    out_root = Path(outdir)
    if out_root.exists() and not out_root.is_dir():
        raise OutputError(f"{out_root}: exists and is not a folder")
    out_abs = os.path.abspath(out_root)
    match = _matcher(globs)
    ext = options.extension
    # with quality targets each file's k (so its output's name) is known only once done
    targets = options.quantize.targets
    suffix = f"-k{'*' if targets else options.quantize.colors}{ext}"

    pairs: list[tuple[Path, Path]] = []  # (input as shown, path relative to the output root)
    files: list[Path] = []
    missing: list[Path] = []
    unusable: list[Path] = []
    for raw in inputs:
        p = Path(raw)
        if p.is_dir():
            for f in _walk(p, recursive, match, out_abs):
                pairs.append((f, f.relative_to(p)))
        elif p.is_file():
            files.append(p)
        elif p.exists() or p.is_symlink():
            unusable.append(p)  # a FIFO, socket, device or a broken link: never opened
        else:
            missing.append(p)
    if files:
        base = os.path.commonpath([os.path.dirname(os.path.abspath(f)) for f in files])
        pairs.extend((f, Path(os.path.relpath(os.path.abspath(f), base))) for f in files)
    if not pairs and missing:
        raise InputError(f"{missing[0]}: no such file or folder")
    if not pairs and unusable:
        raise InputError(f"{unusable[0]}: {_NOT_REGULAR}")
    if not pairs:
        raise InputError("no image files found in the inputs (see --glob and --recursive)")

    outputs: dict[str, Path] = {}
    entries: list[tuple[Path, Path]] = []
    seen: set[str] = set()
    for src, rel in pairs:
        key = os.path.abspath(src)
        if key in seen:
            continue
        seen.add(key)
        dst = out_root / rel.parent / f"{rel.stem}{suffix}"
        entries.append((src, dst))
    stems: dict[str, set[str]] = {}  # output folder -> stems of the inputs written there
    for src, dst in entries:
        stems.setdefault(os.path.abspath(dst.parent), set()).add(Path(src).stem)
    named = re.compile(rf"(.+)-k\d+{re.escape(ext)}")
    listings: dict[Path, list[os.DirEntry[str]]] = {}

    tasks: list[Task] = []
    skipped: list[Task] = []
    failed = [  # a path that does not exist is one failed file; the others are done
        FileResult(
            str(p),
            str(out_root / f"{p.stem}{suffix}"),
            "failed",
            error=f"{p}: no such file or folder",
        )
        for p in missing
    ] + [
        FileResult(
            str(p), str(out_root / f"{p.stem}{suffix}"), "failed", error=f"{p}: {_NOT_REGULAR}"
        )
        for p in unusable
    ]
    for src, dst in entries:
        own = named.fullmatch(src.name)
        if own and own.group(1) in stems.get(os.path.abspath(src.parent), ()):
            continue  # an output of this batch (OUTDIR = an input folder): not an input
        task = Task(str(src), str(dst))
        other = outputs.get(os.path.abspath(dst))
        if other is not None:
            failed.append(
                FileResult(
                    task.input,
                    task.output,
                    "failed",
                    error=f"{src}: its output {dst} is already the output of {other}; "
                    "rename one of them or run them separately",
                )
            )
            continue
        outputs[os.path.abspath(dst)] = src
        if targets:
            out_time = _newest_output(dst.parent, src.stem, ext, listings)
        else:
            out_time = _mtime_ns(dst)
        in_time = _mtime_ns(src)
        if not force and out_time is not None and in_time is not None and out_time >= in_time:
            skipped.append(task)
        else:
            tasks.append(task)
    return Plan(out_root, options, tasks, skipped, failed, force)
