"""Animated GIF, APNG and animated WebP: decode every frame, quantize them all onto one
palette, encode them back as an animation with the same frames, durations and loop count.

The palette is fitted on all frames at once (stacked into one image), so colours do not
flicker from frame to frame. Frames are decoded fully composited (Pillow applies each
frame's disposal and blending), and written as complete frames (GIF: each disposed to the
background before the next; APNG: each replaces the region where it differs), so
transparency stays right.

Limit: Pillow's GIF and WebP writers merge a frame that is identical to the previous one
(after quantization) into it, adding up their durations: the animation looks and times the
same but has fewer frames. APNG keeps every frame.
"""

from __future__ import annotations

import dataclasses
import io
import struct
import warnings
from dataclasses import dataclass

import numpy as np

from .core.quantize import QuantizeResult
from .errors import InputError, UsageError
from .imageio import (
    ANIMATED_FORMATS,
    decode_error_reason,
    default_max_pixels,
    is_srgb_profile,
    rgb_profile,
)

__all__ = [
    "DecodedAnimation",
    "check_animation_output",
    "decode_animation",
    "encode_animation",
    "join_frames",
    "split_frames",
]


@dataclass(frozen=True, eq=False)
class DecodedAnimation:
    """Every frame of an animation, composited, as 8-bit arrays of one layout.

    ``frames`` are ``uint8`` (H, W, 3) or (H, W, 4) (alpha only when some pixel of some
    frame is not opaque); ``durations`` in milliseconds; ``loop`` as the file gives it
    (0 = forever; None = the file does not say, which for GIF means play once).
    """

    frames: list[np.ndarray]
    durations: list[int]
    loop: int | None
    icc_profile: bytes | None
    format: str
    bytes_in: int

    @property
    def pixels(self) -> np.ndarray:
        """All frames stacked top to bottom: the one image the palette is fitted on."""
        return np.concatenate(self.frames, axis=0)


def check_animation_output(fmt: str, label: str, n_frames: int) -> None:
    """Refuse an output format that cannot hold an animation, with one clear line."""
    if fmt not in ANIMATED_FORMATS:
        raise UsageError(
            f"{label} is animated ({n_frames} frames) and {fmt} cannot hold an animation; "
            "write .gif, .png (APNG) or .webp"
        )


def decode_animation(
    data: bytes, *, max_pixels: int | None = None, name: str = "input"
) -> DecodedAnimation:
    """Decode every frame of an animated GIF, APNG or WebP.

    Raises
    ------
    InputError
        Corrupt or truncated data, or more pixels over all frames than ``max_pixels``.
    """
    from PIL import Image, ImageSequence

    limit = default_max_pixels() if max_pixels is None else int(max_pixels)
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        old_limit = Image.MAX_IMAGE_PIXELS
        Image.MAX_IMAGE_PIXELS = None
        try:
            img = Image.open(io.BytesIO(data))
            width, height = img.size
            n_frames = getattr(img, "n_frames", 1)
            if width * height * n_frames > limit:
                raise InputError(
                    f"{name}: {n_frames} frames of {width}x{height} are "
                    f"{width * height * n_frames:,} pixels, over the limit of {limit:,}; "
                    "raise it with --max-pixels"
                )
            fmt = img.format or "GIF"
            icc = rgb_profile(img.info.get("icc_profile"))
            loop = img.info.get("loop")
            frames: list[np.ndarray] = []
            durations: list[int] = []
            for frame in ImageSequence.Iterator(img):
                frame.load()
                durations.append(round(float(frame.info.get("duration", 0) or 0)))
                frames.append(np.asarray(frame.convert("RGBA")))
        except InputError:
            raise
        except (OSError, SyntaxError, ValueError, EOFError, IndexError, struct.error) as exc:
            why = decode_error_reason(exc)
            raise InputError(f"{name}: corrupt or truncated animation ({why})") from exc
        except MemoryError as exc:
            raise InputError(f"{name}: too large to decode in memory") from exc
        finally:
            Image.MAX_IMAGE_PIXELS = old_limit
    if all(bool((f[..., 3] == 255).all()) for f in frames):
        frames = [np.ascontiguousarray(f[..., :3]) for f in frames]
    return DecodedAnimation(
        frames=frames,
        durations=durations,
        loop=None if loop is None else int(loop),
        icc_profile=icc,
        format=fmt,
        bytes_in=len(data),
    )


def split_frames(result: QuantizeResult, n_frames: int) -> list[QuantizeResult]:
    """Cut the result of quantizing the stacked frames into one result per frame."""
    parts = np.split(result.indices, n_frames, axis=0)
    return [
        dataclasses.replace(
            result,
            indices=p,
            counts=np.bincount(p.ravel(), minlength=len(result.palette)).astype(np.int64),
        )
        for p in parts
    ]


def join_frames(frames: list[QuantizeResult]) -> QuantizeResult:
    """The inverse of :func:`split_frames` (frames of equal size, one palette)."""
    indices = np.concatenate([r.indices for r in frames], axis=0)
    return dataclasses.replace(
        frames[0],
        indices=indices,
        counts=np.sum([r.counts for r in frames], axis=0).astype(np.int64),
        mse=float(np.mean([r.mse for r in frames])),
    )


def encode_animation(
    frames: list[QuantizeResult],
    fmt: str,
    *,
    durations: list[int],
    loop: int | None,
    icc_profile: bytes | None = None,
) -> tuple[bytes, list[str]]:
    """Encode per-frame results sharing one palette as an animated GIF, APNG or WebP."""
    from PIL import Image

    check_animation_output(fmt, "the input", len(frames))
    notes: list[str] = []
    first = frames[0]
    pal = first.palette
    has_alpha = pal.shape[1] == 4
    kwargs: dict[str, object] = {"save_all": True, "duration": list(durations)}
    srgb = bool(icc_profile) and is_srgb_profile(icc_profile)
    if icc_profile and not srgb and fmt in ("PNG", "WEBP"):
        kwargs["icc_profile"] = icc_profile
    if srgb and fmt == "PNG":  # as for a still image: the 13-byte chunk, not the profile
        from PIL.PngImagePlugin import PngInfo

        kwargs["pnginfo"] = info = PngInfo()
        info.add(b"sRGB", b"\x00")

    def palette_image(r: QuantizeResult) -> Image.Image:
        h, w = r.indices.shape
        im = Image.frombytes("P", (w, h), np.ascontiguousarray(r.indices).tobytes())
        im.putpalette(pal[:, :3].tobytes(), rawmode="RGB")
        return im

    buf = io.BytesIO()
    if fmt == "GIF":
        images = [palette_image(r) for r in frames]
        if loop is not None:
            kwargs["loop"] = loop
        if first.transparent_index is not None:
            kwargs["transparency"] = first.transparent_index
        if has_alpha and bool(((pal[:, 3] > 0) & (pal[:, 3] < 255)).any()):
            notes.append(
                "GIF has no partial transparency: semi-transparent colours are written opaque"
            )
        images[0].save(buf, "GIF", append_images=images[1:], disposal=2, optimize=False, **kwargs)
    elif fmt == "PNG":
        from PIL.PngImagePlugin import Blend, Disposal

        images = [palette_image(r) for r in frames]
        kwargs["loop"] = 1 if loop is None else loop
        if has_alpha:
            kwargs["transparency"] = bytes(pal[:, 3].tolist())
        # Frames are complete: each replaces its changed region (OP_SOURCE) and stays
        # (OP_NONE). Pillow merges a frame identical to the previous one unless their
        # disposals differ, so repeats alternate with OP_PREVIOUS, which restores the same
        # picture: the frame count and each duration are kept.
        disposal = [Disposal.OP_NONE]
        for i in range(1, len(frames)):
            repeat = np.array_equal(frames[i].indices, frames[i - 1].indices)
            disposal.append(
                Disposal.OP_PREVIOUS
                if repeat and disposal[-1] != Disposal.OP_PREVIOUS
                else Disposal.OP_NONE
            )
        images[0].save(
            buf,
            "PNG",
            append_images=images[1:],
            disposal=disposal,
            blend=Blend.OP_SOURCE,
            optimize=True,
            **kwargs,
        )
    else:  # WEBP
        images = [Image.fromarray(r.image()) for r in frames]
        kwargs["loop"] = 1 if loop is None else loop
        if has_alpha:
            # libwebp 1.6 loses the alpha flag of some animations built from sub-frames;
            # key frames only keep transparency right
            kwargs["kmax"] = 1
        images[0].save(
            buf, "WEBP", append_images=images[1:], lossless=True, quality=100, method=4, **kwargs
        )
    return buf.getvalue(), notes
