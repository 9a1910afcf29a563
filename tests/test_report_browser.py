"""The report page in a real browser (headless Chromium from file://): no errors, nothing
fetched, every image decodes, the split and the zoom show the right pixels, the numbers are
``compare --json``'s, and nothing overflows at desktop or phone width.

Needs Debian's chromium and chromium-driver (``make browser``); skipped with that hint
when they are missing. CI installs them (``.ci/run``), so there it always runs.
"""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

import numpy as np
import pytest
from browser import chromium, missing, set_viewport, wait_for_images
from conftest import photo, run_module, save
from PIL import Image

from kmeanscli.report.html import COLUMNS


@pytest.fixture(autouse=True, scope="module")
def _browser() -> None:
    """Skip without the browser, with how to install it; fail instead where it is required
    (``.ci/run`` sets KMEANSCLI_REQUIRE_BROWSER=1, so CI never skips this quietly)."""
    reason = missing()
    if reason is not None:
        if os.environ.get("KMEANSCLI_REQUIRE_BROWSER"):
            pytest.fail(f"browser test: {reason}")
        pytest.skip(f"browser test: {reason}")


WIDTH, HEIGHT = 1280, 900
KS = "4,16"


@pytest.fixture(scope="module")
def site(_browser, tmp_path_factory) -> dict:
    """A 360×200 photo-like image, its report, the rows of compare --json and the images."""
    folder = tmp_path_factory.mktemp("report")
    pixels = photo(9, (200, 360))
    src = save(folder / "in.png", pixels)
    page = folder / "report.html"
    done = run_module(["report", str(src), "-k", KS, "-o", str(page), "-q"])
    assert done.returncode == 0, done.stderr
    done = run_module(["compare", str(src), "-k", KS, "--json"])
    assert done.returncode == 0, done.stderr
    results = {}
    for k in KS.split(","):
        out = folder / f"k{k}.png"
        assert run_module(["compress", str(src), "-k", k, "-o", str(out), "-q"]).returncode == 0
        with Image.open(out) as im:
            results[int(k)] = np.asarray(im.convert("RGB"))
    return {
        "url": page.resolve().as_uri(),
        "original": pixels,
        "results": results,
        "json": json.loads(done.stdout),
    }


@pytest.fixture(scope="module")
def driver(_browser):
    with chromium(WIDTH, HEIGHT) as d:
        set_viewport(d, WIDTH, HEIGHT)
        yield d


@pytest.fixture
def page(driver, site):
    set_viewport(driver, WIDTH, HEIGHT)
    driver.get("about:blank")
    driver.get_log("browser")  # start each test with empty logs
    driver.get_log("performance")
    driver.get(site["url"])
    wait_for_images(driver)
    return driver


def _screen(driver) -> np.ndarray:
    with Image.open(io.BytesIO(driver.get_screenshot_as_png())) as im:
        return np.asarray(im.convert("RGB")).astype(np.int16)


def _geometry(driver, k: int) -> dict:
    """The viewer of result k, scrolled into view: its box, its stage's box, the split."""
    return driver.execute_script(
        """
        const v = document.querySelector(`#kmeans-k${arguments[0]} .viewer`);
        v.scrollIntoView({block: 'center'});
        const r = v.getBoundingClientRect(), s = v.querySelector('.stage').getBoundingClientRect();
        const split = v.querySelector('.split');
        return {left: r.left, top: r.top, width: r.width, height: r.height,
                stageLeft: s.left, stageTop: s.top, stageWidth: s.width, stageHeight: s.height,
                split: +split.getAttribute('aria-valuenow')};
        """,
        k,
    )


def _zoom(driver, zoom: str) -> None:
    driver.find_element("css selector", f'.zoom button[data-zoom="{zoom}"]').click()


def _expected(image: np.ndarray, g: dict, scale: int, shape: tuple[int, int]) -> np.ndarray:
    """What the viewer must show of ``image`` on screen: each image pixel a scale×scale block."""
    ys = (np.arange(shape[0]) + round(g["top"]) - round(g["stageTop"])) // scale
    xs = (np.arange(shape[1]) + round(g["left"]) - round(g["stageLeft"])) // scale
    return image[np.clip(ys, 0, image.shape[0] - 1)][:, np.clip(xs, 0, image.shape[1] - 1)]


def _sides(driver, site, k: int, scale: int) -> dict[str, tuple[float, float]]:
    """Mean difference of each side of the split from the original and from result k:
    {"left": (to original, to result), "right": (...)}; the handle and labels left out."""
    g = _geometry(driver, k)
    screen = _screen(driver)
    top, left = round(g["top"]), round(g["left"])
    view = screen[top : top + round(g["height"]), left : left + round(g["width"])]
    at = round(g["width"] * g["split"] / 100)
    # the part of the view the image covers, below the labels
    x0 = max(4, round(g["stageLeft"] - g["left"]))
    x1 = min(view.shape[1] - 4, round(g["stageLeft"] + g["stageWidth"] - g["left"]))
    y0 = max(34, round(g["stageTop"] - g["top"]))
    y1 = min(view.shape[0] - 4, round(g["stageTop"] + g["stageHeight"] - g["top"]))
    out = {}
    for side, cols in (("left", slice(x0, at - 18)), ("right", slice(at + 18, x1))):
        assert cols.stop - cols.start >= 20, (side, g)
        rows = slice(y0, y1)
        got = view[rows, cols]
        diffs = []
        for image in (site["original"], site["results"][k]):
            want = _expected(image.astype(np.int16), g, scale, view.shape[:2])[rows, cols]
            diffs.append(float(np.abs(got - want).mean()))
        out[side] = tuple(diffs)
    return out


def test_loads_offline_without_errors_and_every_image_decodes(page) -> None:
    assert page.execute_script("return performance.getEntriesByType('resource').length") == 0
    requests = [json.loads(entry["message"])["message"] for entry in page.get_log("performance")]
    urls = [
        m["params"]["request"]["url"]
        for m in requests
        if m["method"] == "Network.requestWillBeSent"
    ]
    assert all(u.startswith(("file://", "data:")) for u in urls), urls
    assert sum(u.startswith("file://") for u in urls) <= 1  # the page itself, nothing else
    images = page.execute_script(
        "return Array.from(document.images, i => [i.alt, i.complete, i.naturalWidth])"
    )
    assert len(images) == 1 + 2 * len(KS.split(","))  # the original, and before+after per k
    assert all(complete and width > 0 for _, complete, width in images), images
    assert page.get_log("browser") == []


def test_numbers_on_the_page_are_those_of_compare_json(page, site) -> None:
    embedded = json.loads(page.find_element("id", "compare-json").get_attribute("textContent"))
    table = page.execute_script(
        """return Array.from(document.querySelectorAll('#results-table tbody tr'), tr =>
             Object.fromEntries(Array.from(tr.querySelectorAll('td[data-key]'),
               td => [td.dataset.key, [td.textContent.trim(), td.dataset.value]])))"""
    )
    assert len(table) == len(site["json"]) == len(embedded)
    for shown, record, ours in zip(table, site["json"], embedded, strict=True):
        for key, _heading, spec in COLUMNS:
            text, value = shown[key]
            assert float(value) == ours[key]
            assert text == format(ours[key], spec)
            if key != "seconds":  # a timing: the one number two runs do not share
                assert ours[key] == record[key], key
    cards = page.execute_script(
        """return Array.from(document.querySelectorAll('.result'), s =>
             Object.fromEntries(Array.from(s.querySelectorAll('dd[data-key]'),
               dd => [dd.dataset.key, dd.textContent.trim()])))"""
    )
    for card, shown in zip(cards, table, strict=True):
        assert card == {key: text for key, (text, _) in shown.items() if key != "k"}


def test_dragging_and_arrow_keys_move_the_split(page, site) -> None:
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.keys import Keys

    _zoom(page, "1")  # one image pixel per screen pixel: the screenshot holds their values
    sides = _sides(page, site, 4, 1)
    assert sides["left"][0] < 1.0 < 8 < sides["left"][1]  # original left of the split
    assert sides["right"][1] < 1.0 < 8 < sides["right"][0]  # result right of it
    handle = page.find_element("css selector", "#kmeans-k4 .split")
    g = _geometry(page, 4)
    ActionChains(page).click_and_hold(handle).move_by_offset(
        round(g["width"] * 0.2), 0
    ).release().perform()
    g = _geometry(page, 4)
    assert 68 <= g["split"] <= 72
    sides = _sides(page, site, 4, 1)
    assert sides["left"][0] < 1.0 and sides["right"][1] < 1.0  # the original now reaches 70 %
    handle.send_keys(*[Keys.ARROW_LEFT] * 5, Keys.SHIFT + Keys.ARROW_LEFT)
    assert _geometry(page, 4)["split"] == pytest.approx(g["split"] - 15, abs=0.11)
    other = _geometry(page, 16)["split"]
    assert other == 50  # each result has its own split
    assert page.get_log("browser") == []


def test_touch_drag_moves_the_split(page) -> None:
    from selenium.webdriver.common.actions import interaction
    from selenium.webdriver.common.actions.action_builder import ActionBuilder
    from selenium.webdriver.common.actions.pointer_input import PointerInput

    g = _geometry(page, 16)
    finger = PointerInput(interaction.POINTER_TOUCH, "finger")
    actions = ActionBuilder(page, mouse=finger)
    y = round(g["top"] + g["height"] / 2)
    actions.pointer_action.move_to_location(round(g["left"] + g["width"] / 2), y)
    actions.pointer_action.pointer_down()
    actions.pointer_action.move_to_location(round(g["left"] + g["width"] * 0.2), y)
    actions.pointer_action.pointer_up()
    actions.perform()
    assert 18 <= _geometry(page, 16)["split"] <= 22


def _assert_views_show_the_same_place(page, site, moved: dict) -> None:
    """At zoom 8:1, after panning result 16 to ``moved``: result 4 shows the same place, and
    result 16 still shows the right pixels on each side of its split."""
    four = _geometry(page, 4)
    assert (four["stageLeft"] - four["left"], four["stageTop"] - four["top"]) == (
        moved["stageLeft"] - moved["left"],
        moved["stageTop"] - moved["top"],
    )
    sides = _sides(page, site, 16, 8)
    assert sides["left"][0] < 1.0 and sides["right"][1] < 1.0


def test_zoom_shows_pixels_as_blocks_and_pans_every_view_together(page, site) -> None:
    from selenium.webdriver.common.action_chains import ActionChains

    _zoom(page, "8")
    sides = _sides(page, site, 16, 8)  # each image pixel an 8×8 block, exactly
    assert sides["left"][0] < 1.0 and sides["right"][1] < 1.0
    g = _geometry(page, 16)
    viewer = page.find_element("css selector", "#kmeans-k16 .viewer")
    ActionChains(page).move_to_element_with_offset(
        viewer, -round(g["width"] / 4), 0
    ).click_and_hold().move_by_offset(-160, -80).release().perform()
    moved = _geometry(page, 16)
    assert moved["split"] == 50  # dragging the image pans, it does not move the split
    assert moved["stageLeft"] - moved["left"] < g["stageLeft"] - g["left"] - 100
    assert moved["stageTop"] - moved["top"] < g["stageTop"] - g["top"] - 40
    _assert_views_show_the_same_place(page, site, moved)
    _zoom(page, "0")
    assert _geometry(page, 16)["stageWidth"] == pytest.approx(g["width"], abs=0.5)


def test_arrow_keys_pan_every_view_when_zoomed(page, site) -> None:
    from selenium.webdriver.common.keys import Keys

    viewer = page.find_element("css selector", "#kmeans-k16 .viewer")
    _zoom(page, "0")
    before = _geometry(page, 16)
    page.execute_script("arguments[0].focus()", viewer)
    viewer.send_keys(Keys.ARROW_RIGHT)
    assert _geometry(page, 16) == before  # the whole image is shown: nothing to pan
    _zoom(page, "8")
    page.execute_script("arguments[0].focus()", viewer)
    viewer.send_keys(Keys.HOME)
    g = _geometry(page, 16)
    assert g["stageLeft"] == pytest.approx(g["left"], abs=0.5)  # at the left edge
    viewer.send_keys(Keys.ARROW_RIGHT)  # a tenth of the view
    moved = _geometry(page, 16)
    assert moved["stageLeft"] - moved["left"] == pytest.approx(-0.1 * g["width"], abs=1.5)
    viewer.send_keys(Keys.SHIFT, Keys.ARROW_RIGHT)  # half of it more
    moved = _geometry(page, 16)
    assert moved["stageLeft"] - moved["left"] == pytest.approx(-0.6 * g["width"], abs=2.5)
    top = moved["stageTop"] - moved["top"]
    viewer.send_keys(Keys.ARROW_DOWN)
    moved = _geometry(page, 16)
    assert moved["stageTop"] - moved["top"] == pytest.approx(top - 0.1 * g["height"], abs=1.5)
    assert moved["split"] == before["split"]  # the keys pan; the split stays
    _assert_views_show_the_same_place(page, site, moved)
    _zoom(page, "0")


@pytest.mark.parametrize("width", [WIDTH, 390])
def test_no_horizontal_overflow(driver, site, width: int) -> None:
    set_viewport(driver, width, 844)
    driver.get(site["url"])
    wait_for_images(driver)
    sizes = driver.execute_script(
        "const e = document.documentElement; return [e.scrollWidth, e.clientWidth]"
    )
    assert sizes[0] <= sizes[1] == width


def test_swatch_copies_sort_and_dark_scheme(page, site) -> None:
    from selenium.webdriver.support.ui import WebDriverWait

    swatch = page.find_element("css selector", "#kmeans-k4 .swatch")
    hex_code = swatch.get_attribute("data-hex")
    swatch.click()
    WebDriverWait(page, 10).until(
        lambda d: hex_code in d.find_element("id", "toast").get_attribute("textContent")
    )
    page.find_element("xpath", "//th/button[text()='bytes']").click()
    order = page.execute_script(
        "return Array.from(document.querySelectorAll('#results-table tbody tr'), r => r.dataset.id)"
    )
    assert order == ["kmeans-k4", "kmeans-k16"]
    page.find_element("xpath", "//th/button[text()='bytes']").click()
    order = page.execute_script(
        "return Array.from(document.querySelectorAll('#results-table tbody tr'), r => r.dataset.id)"
    )
    assert order == ["kmeans-k16", "kmeans-k4"]
    background = "return getComputedStyle(document.body).backgroundColor"
    light = page.execute_script(background)
    page.execute_cdp_cmd(
        "Emulation.setEmulatedMedia",
        {"features": [{"name": "prefers-color-scheme", "value": "dark"}]},
    )
    dark = page.execute_script(background)
    page.execute_cdp_cmd("Emulation.setEmulatedMedia", {"features": []})
    assert (light, dark) == ("rgb(255, 255, 255)", "rgb(13, 17, 23)")
    assert page.get_log("browser") == []


def test_batch_report_works_offline_and_sorts(driver, tmp_path: Path) -> None:
    folder = tmp_path / "a very long folder name that a phone has to wrap or scroll" / "in"
    for i in range(3):
        save(folder / f"photo-{i}.png", photo(30 + i, (60, 90)))
    page = tmp_path / "batch.html"
    done = run_module(
        [
            "batch",
            str(folder),
            "-o",
            str(tmp_path / "out"),
            "-k",
            "8",
            "-j",
            "1",
            "-q",
            "--report",
            str(page),
        ]
    )
    assert done.returncode == 0, done.stderr
    for width in (WIDTH, 390):
        set_viewport(driver, width, 844)
        driver.get("about:blank")
        driver.get_log("browser")
        driver.get(page.resolve().as_uri())
        wait_for_images(driver)
        images = driver.execute_script(
            "return Array.from(document.images, i => i.complete && i.naturalWidth > 0)"
        )
        assert images == [True] * 12  # thumbnails and previews of 3 files
        assert driver.execute_script("return performance.getEntriesByType('resource').length") == 0
        sizes = driver.execute_script(
            "const e = document.documentElement; return [e.scrollWidth, e.clientWidth]"
        )
        assert sizes[0] <= sizes[1] == width
    driver.find_element("xpath", "//th/button[text()='bytes out']").click()
    shown = driver.execute_script(
        """const cells = document.querySelectorAll('#files-table td[data-key="bytes_out"]');
           return Array.from(cells, td => +td.dataset.value)"""
    )
    assert shown == sorted(shown) and len(shown) == 3
    assert driver.get_log("browser") == []
