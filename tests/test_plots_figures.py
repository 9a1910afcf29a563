"""The compress figure (--plot, drawn with matplotlib's Agg backend): sizes and PSNR in the
titles, transparency over a checkerboard in the images and the swatches, and the line that
says how to close the --preview window."""

from __future__ import annotations

import json

import matplotlib.figure
import matplotlib.pyplot as plt
import numpy as np
from conftest import load_image
from PIL import Image

from kmeanscli import plots, quantize
from kmeanscli.cli.compress import preview_hint

WHITE, GREY = (255, 255, 255), (204, 204, 204)


def _runs(row: np.ndarray) -> list[tuple[int, ...]]:
    """The colours along a pixel row, one entry per run of equal pixels."""
    out: list[tuple[int, ...]] = []
    for px in map(tuple, row[:, :3].astype(int)):
        if not out or out[-1] != px:
            out.append(px)
    return out


def _near(img: np.ndarray, rgb: tuple[int, int, int]) -> int:
    return int((np.abs(img[..., :3].astype(int) - rgb).max(axis=-1) <= 2).sum())


def test_plot_draws_transparency_on_a_checkerboard(cli, tmp_path) -> None:
    pixels = np.zeros((60, 90, 4), np.uint8)  # transparent | opaque red | half-transparent blue
    pixels[:, 30:60] = (200, 30, 30, 255)
    pixels[:, 60:] = (0, 0, 255, 128)
    Image.fromarray(pixels).save(tmp_path / "t.png")
    plot = tmp_path / "fig.png"
    r = cli("compress", tmp_path / "t.png", "-k", "3", "--plot", plot)  # 2 colours + clear
    assert r.code == 0, r.stderr
    fig = np.asarray(load_image(plot).convert("RGB"))
    height = fig.shape[0]
    # a row through the images: the transparent third alternates white and grey squares
    runs = _runs(fig[height // 3])
    checker = [c for c in runs if c in (WHITE, GREY)]
    assert checker.count(GREY) >= 4 and checker.count(WHITE) >= 4
    # the half-transparent blue is blue over white and over grey, never opaque blue
    over_white, over_grey = (127, 127, 255), (102, 102, 229)
    images, swatches = fig[: int(height * 0.75)], fig[int(height * 0.8) :]
    for part in (images, swatches):
        assert _near(part, over_white) > 200 and _near(part, over_grey) > 200
        assert _near(part, (0, 0, 255)) == 0


def test_plot_titles_carry_sizes_and_psnr(cli, tmp_path, monkeypatch) -> None:
    titles: list[str] = []
    real = matplotlib.figure.Figure.savefig

    def savefig(self, *args, **kwargs):
        titles.extend(ax.get_title() for ax in self.axes)
        return real(self, *args, **kwargs)

    monkeypatch.setattr(matplotlib.figure.Figure, "savefig", savefig)
    rng = np.random.default_rng(0)
    noise = rng.integers(0, 256, (80, 100, 3), dtype=np.uint8)  # output over 1 kB
    Image.fromarray(noise).save(tmp_path / "n.png")
    r = cli("compress", tmp_path / "n.png", "-k", "8", "--plot", tmp_path / "f.png", "--json")
    assert r.code == 0, r.stderr
    report = json.loads(r.stdout)
    kb_in, kb_out = report["bytes_in"] / 1000, report["bytes_out"] / 1000
    assert titles[:2] == [
        f"original · {kb_in:,.1f} kB",
        f"8 colours · {kb_out:,.1f} kB · PSNR {report['psnr']:.1f} dB",
    ]


def test_preview_says_how_to_close_the_window(monkeypatch, capsys) -> None:
    shown: list[str] = []
    monkeypatch.setattr(plots, "has_display", lambda: True)
    monkeypatch.setattr(plt, "get_backend", lambda: "tkagg")
    monkeypatch.setattr(plt, "show", lambda: shown.append(capsys.readouterr().err))
    monkeypatch.setattr(plt, "figure", lambda **kw: matplotlib.figure.Figure(**kw))
    pixels = np.zeros((8, 8, 3), np.uint8)
    result = quantize(pixels, 2, seed=0)
    assert plots.show_compress_figure(pixels, result, before_show=lambda: preview_hint(False))
    # the line is on stderr before the window blocks
    assert shown == ["kmeanscli: preview: close the figure window (or press q in it) to finish\n"]
