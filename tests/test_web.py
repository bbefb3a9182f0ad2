"""The web page in real Chromium (Debian's /usr/bin/chromium through Playwright) against ``faceprint
serve`` on 127.0.0.1: sign in, enroll (per-photo results), recognize (boxes and names drawn),
verify, rename and delete people, and the webcam tab answering a liveness challenge through
Chromium's fake camera, fed a y4m made from ``videos/person_b_live.mov``. Screenshots of each tab
are written to the test's folder and checked for content; nothing is loaded from outside the server."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image as PILImage

from clips import still_frames, turns_frames, write_y4m
from test_server_uvicorn import _admin_key, serving

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.real, pytest.mark.data]

CHROMIUM = Path("/usr/bin/chromium")


def _save_png(frame: Any, path: Path) -> Path:
    PILImage.fromarray(frame).save(path)
    return path


def _busy(shot: Path) -> float:
    """Standard deviation of the screenshot's grey levels: a blank page is ~0."""
    with PILImage.open(shot) as im:
        return float(np.asarray(im.convert("L")).std())


def test_web_page_end_to_end_in_chromium(
    tmp_path: Path, data_root: Path, lfw_image: Callable[[str, int], Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    if not CHROMIUM.is_file():
        pytest.skip(f"{CHROMIUM} not found (apt-get install chromium)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright not installed")
    expect = sync_api.expect
    token = _admin_key(tmp_path)
    y4m = write_y4m(turns_frames(data_root), tmp_path / "camera.y4m")
    b1, b2 = (_save_png(f, tmp_path / f"person_b_{i}.png") for i, f in enumerate(still_frames(data_root)))
    monkeypatch.setenv("FACEPRINT_CHALLENGE_ACTIONS", "turn_left,turn_right")  # what the clip can answer
    shots = tmp_path / "shots"
    shots.mkdir()
    args = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
            "--disable-component-update", "--disable-sync", "--use-fake-ui-for-media-stream",
            "--use-fake-device-for-media-stream", f"--use-file-for-fake-video-capture={y4m}"]
    with serving(tmp_path) as (url, _port, _log), sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=args)
        try:
            context = browser.new_context(viewport={"width": 1280, "height": 1000})
            context.grant_permissions(["camera"], origin=url)
            page = context.new_page()
            page.set_default_timeout(30_000)
            requests: list[str] = []
            page.on("request", lambda r: requests.append(r.url))
            errors: list[str] = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.on("dialog", lambda d: d.accept())
            page.goto(url)

            # sign in: a wrong key is refused with the server's reason, the right one opens the tabs
            page.fill("#key", token + "x")
            page.click("#signin-go")
            expect(page.locator("#signin-status")).to_contain_text("sign-in failed")
            assert page.locator("#tabs").is_hidden()
            page.fill("#key", token)
            page.click("#signin-go")
            expect(page.locator("#signin-status")).to_contain_text("signed in: collection default, role admin")

            # enroll: a bad photo among good ones -> nothing stored, each photo's result shown
            page.click("#tabs button[data-tab=enroll]")
            page.fill("#enroll-name", "Colin_Powell")
            broken = tmp_path / "broken.jpg"
            broken.write_bytes(b"not a jpeg")
            page.set_input_files("#enroll-files", [lfw_image("Colin_Powell", 1), lfw_image("Colin_Powell", 2), broken])
            page.click("#enroll-go")
            expect(page.locator("#enroll-status")).to_contain_text("1 of 3 photo(s) cannot be used")
            rows = page.locator("#enroll-results tbody tr")
            expect(rows).to_have_count(3)
            expect(rows.nth(2)).to_contain_text("not used")
            expect(rows.nth(2)).to_contain_text("broken.jpg")
            page.screenshot(path=str(shots / "enroll_refused.png"), full_page=True)
            for name, photos in (("Colin_Powell", [lfw_image("Colin_Powell", 1), lfw_image("Colin_Powell", 2)]),
                                 ("Tony_Blair", [lfw_image("Tony_Blair", 1)]), ("person_b", [b1, b2])):
                page.fill("#enroll-name", name)
                page.set_input_files("#enroll-files", photos)
                page.click("#enroll-go")
                expect(page.locator("#enroll-status")).to_contain_text(f"enrolled {name}: {len(photos)} photo(s)")
            expect(rows.first).to_contain_text("ok")

            # recognize: a new photo of Powell, his name drawn on the photo and listed
            page.click("#tabs button[data-tab=recognize]")
            page.set_input_files("#recognize-file", lfw_image("Colin_Powell", 5))
            page.click("#recognize-go")
            expect(page.locator("#recognize-results li").first).to_contain_text("Colin_Powell")
            expect(page.locator("#recognize-results li .known").first).to_have_text("Colin_Powell")
            # the box is drawn in green (a known face) on the canvas
            green = page.evaluate("""() => {
                const c = document.getElementById('recognize-canvas');
                const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
                let n = 0;
                for (let i = 0; i < d.length; i += 4) if (d[i] < 60 && d[i + 1] > 170 && d[i + 2] < 110) n++;
                return [c.width, c.height, n];
            }""")
            assert green[0] > 100 and green[1] > 100 and green[2] > 200, green
            page.screenshot(path=str(shots / "recognize.png"), full_page=True)

            # verify: same person / not the same person
            page.click("#tabs button[data-tab=verify]")
            page.set_input_files("#verify-a", lfw_image("Colin_Powell", 1))
            page.set_input_files("#verify-b", lfw_image("Colin_Powell", 5))
            page.click("#verify-go")
            expect(page.locator("#verify-result")).to_contain_text("Same person")
            page.set_input_files("#verify-b", lfw_image("Tony_Blair", 1))
            page.click("#verify-go")
            expect(page.locator("#verify-result")).to_contain_text("Not the same person")
            page.screenshot(path=str(shots / "verify.png"), full_page=True)

            # people: listed with their photo counts; rename to a name with markup-like text; delete
            page.click("#tabs button[data-tab=people]")
            expect(page.locator("#people-table tbody tr")).to_have_count(3)
            blair = page.locator("#people-table tbody tr[data-name=Tony_Blair]")
            expect(blair.locator("td").nth(1)).to_have_text("1")
            blair.locator("input.rename-to").fill("Tony Blair <b>[PM]</b>")
            blair.locator("button.rename").click()
            expect(page.locator("#people-status")).to_contain_text("renamed Tony_Blair")
            renamed = page.locator("#people-table tbody tr td:first-child", has_text="Tony Blair <b>[PM]</b>")
            expect(renamed).to_have_count(1)  # shown literally, not as markup
            assert page.locator("#people-table b").count() == 0
            page.screenshot(path=str(shots / "people.png"), full_page=True)
            page.locator("#people-table tbody tr", has_text="Tony Blair").locator("button.delete").click()
            expect(page.locator("#people-status")).to_contain_text("deleted Tony Blair")
            expect(page.locator("#people-table tbody tr")).to_have_count(2)

            # webcam: the challenge is issued, recorded from the (fake) camera, judged live, and named
            page.click("#tabs button[data-tab=webcam]")
            page.click("#cam-start")
            expect(page.locator("#cam-instructions")).to_contain_text("turn your head")
            expect(page.locator("#cam-verdict")).to_be_visible(timeout=90_000)
            page.screenshot(path=str(shots / "webcam.png"), full_page=True)
            verdict = page.locator("#cam-verdict").inner_text()
            identity = page.locator("#cam-identity").inner_text()
            status = page.locator("#cam-status").inner_text()
            assert "Liveness: live (challenge passed)" in verdict, (verdict, identity, status)
            assert "Identity: person_b (known" in identity, (verdict, identity, status)
            # a frame of the answer stays on screen (the camera is off): a picture, not a flat fill
            spread = page.evaluate("""() => {
                const c = document.getElementById('cam-still');
                const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
                let lo = 255, hi = 0;
                for (let i = 0; i < d.length; i += 4) { lo = Math.min(lo, d[i + 1]); hi = Math.max(hi, d[i + 1]); }
                return [c.width, hi - lo];
            }""")
            assert page.locator("#cam-still").is_visible() and spread[0] > 100 and spread[1] > 100, spread
        finally:
            browser.close()
    assert not errors, errors
    assert all(u.startswith((url, "blob:", "data:")) for u in requests), [u for u in requests if url not in u]
    for shot in shots.iterdir():
        assert _busy(shot) > 10, shot.name
