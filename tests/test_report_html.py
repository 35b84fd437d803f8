"""``infobench report``: one self-contained HTML page of results folders, checked as text and in a
real headless browser (Debian's chromium; those tests skip, saying why, where it is absent)."""

from __future__ import annotations

import base64
import copy
import json
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import yaml
from tests_support import TINY
from typer.testing import CliRunner

from infobench.cli import app
from infobench.errors import InfobenchError
from infobench.report.html import build_report

CLAIMS = [
    {"id": "ts-keeps-accuracy", "paper": "Guo et al. 2017", "metric": "accuracy", "split": "test",
     "equal": "temperature", "to": "uncalibrated", "tolerance": 0.002},
    {"id": "ts-lowers-ece", "paper": "Guo et al. <2017> & co", "metric": "ece", "split": "test",
     "lower": "temperature", "than": "uncalibrated"},
]
DATA_URI = re.compile(r'<img src="data:image/png;base64,([A-Za-z0-9+/=]+)"')


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    """A real results folder: the tiny calibration sweep (2 methods x 2 seeds), with claims."""
    from infobench.runner import execute, plan
    from infobench.spec import validate

    spec = validate({**copy.deepcopy(TINY), "seeds": [0, 1], "claims": CLAIMS})
    root = tmp_path_factory.mktemp("report")
    assert execute(plan(spec, root)).statuses == {"done": 4}
    return root / "tiny"


@pytest.fixture
def own_copy(folder, tmp_path) -> Path:
    """A copy of the folder this test may change."""
    return Path(shutil.copytree(folder, tmp_path / "tiny"))


def test_page_holds_claims_tables_spec_manifest_and_every_figure(folder):
    report = build_report([folder])
    page = report.html
    assert report.problems == []
    # the claims, judged from the spec's claims (their paper names escaped)
    assert "ts-keeps-accuracy" in page and "Guo et al. &lt;2017&gt; &amp; co" in page
    assert '<td class="num verdict-holds">holds</td>' in page
    # the summary: one row per method, the best in bold
    assert re.search(r'<td class="key">temperature</td><td class="key">test</td>', page)
    assert 'class="num best"' in page
    # the resolved spec (with defaults the user did not write) and the manifest
    assert "val_fraction: 0.2" in page and "max_iter: 100" in page
    manifest = json.loads((folder / "manifest.json").read_text())
    for key in ("torch", "device", "started", "finished", "seconds"):
        assert f'<td class="key">{key}</td><td class="key">{manifest[key]}</td>' in page
    # every figure embedded, byte for byte: the page needs no other file
    embedded = sorted(base64.b64decode(m) for m in DATA_URI.findall(page))
    on_disk = sorted(p.read_bytes() for p in (folder / "plots").glob("*.png"))
    assert len(on_disk) >= 2 and embedded == on_disk
    assert not re.search(r'(src|href)="(?!data:|#)', page), "a link to fetch: the page must read offline"


def test_everything_from_the_folder_is_escaped(own_copy):
    (own_copy / "spec.yaml").write_text((own_copy / "spec.yaml").read_text() + "# </pre><script>alert(1)</script>\n")
    (own_copy / "plots" / "a<b>&.svg").write_text('<svg xmlns="http://www.w3.org/2000/svg" width="4" height="4">'
                                                  "<script>alert(2)</script></svg>")
    page = build_report([own_copy], title="<i>mine</i>").html
    assert "<script" not in page and "<i>mine" not in page
    assert "&lt;/pre&gt;&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "&lt;i&gt;mine&lt;/i&gt;" in page and "plots/a&lt;b&gt;&amp;.svg" in page
    # an SVG goes in as an image (its script never runs), not inline
    assert re.search(r'<img src="data:image/svg\+xml;base64,[^"]+" alt="plots/a&lt;b&gt;&amp;.svg">', page)


def test_pdf_figures_are_linked_and_a_damaged_png_is_named(own_copy):
    (own_copy / "plots" / "curve.pdf").write_bytes(b"%PDF-1.4\n")
    (own_copy / "plots" / "torn.png").write_bytes(b"not a png")
    report = build_report([own_copy])
    assert f'href="{(own_copy / "plots" / "curve.pdf").resolve().as_uri()}"' in report.html
    assert report.problems == [f"{own_copy}/plots/torn.png: not a PNG file; left out"]
    assert len(DATA_URI.findall(report.html)) == len(list((own_copy / "plots").glob("*.png"))) - 1


def test_claims_csv_is_shown_when_the_spec_declares_none(own_copy):
    spec = yaml.safe_load((own_copy / "spec.yaml").read_text())
    del spec["claims"]
    (own_copy / "spec.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    (own_copy / "claims.csv").write_text("id,verdict,difference\nx<y>,holds,0.012345678\n")
    page = build_report([own_copy]).html
    assert "<caption>claims.csv</caption>" in page
    assert '<td class="key">x&lt;y&gt;</td><td class="num verdict-holds">holds</td><td class="num">0.01235</td>' in page


def test_a_damaged_section_is_shown_in_place_and_the_rest_still_written(own_copy):
    (own_copy / "manifest.json").write_text("{not json")
    report = build_report([own_copy])
    assert len(report.problems) == 1 and "manifest" in report.problems[0]
    assert '<p class="problem">' in report.html and "ts-keeps-accuracy" in report.html


def test_two_folders_get_a_comparison_first(folder, own_copy, tmp_path):
    other = Path(shutil.copytree(own_copy, tmp_path / "again"))
    page = build_report([folder, other]).html
    across = page.index("<h2>Across folders</h2>")
    assert across < page.index('<section id="folder-1">') < page.index('<section id="folder-2">')
    assert "<caption>Paired" in page[across:page.index('<section id="folder-1">')]
    with pytest.raises(InfobenchError, match="given twice"):
        build_report([folder, folder])


def test_cli_writes_the_page_and_refuses_bad_paths(folder, tmp_path):
    out = tmp_path / "r.html"
    result = CliRunner().invoke(app, ["report", str(folder), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert out.read_text().startswith("<!DOCTYPE html>") and f"wrote {out}" in result.output
    assert not list(tmp_path.glob(".*.tmp"))
    (tmp_path / "target.html").write_text("keep me")
    (tmp_path / "link.html").symlink_to(tmp_path / "target.html")
    for bad in (tmp_path, tmp_path / "link.html"):
        result = CliRunner().invoke(app, ["report", str(folder), "--out", str(bad)])
        assert result.exit_code == 2 and "is a folder or a link" in result.output
    assert (tmp_path / "target.html").read_text() == "keep me"
    result = CliRunner().invoke(app, ["report", str(tmp_path), "--out", str(out)])
    assert result.exit_code == 2 and "not a results folder (no runs.csv" in result.output
    result = CliRunner().invoke(app, ["report", str(folder), "--out", str(out), "--ci", "150"])
    assert result.exit_code == 2 and "confidence level 150" in result.output


def test_ci_puts_bootstrap_intervals_in_the_tables(folder):
    page = build_report([folder], ci=95).html
    assert "mean [95% CI] over seeds" in page
    assert re.search(r'<td class="num best">0\.\d+ \[0\.\d+, 0\.\d+\]</td>', page)


# --------------------------------------------------------------------------- in a real browser

CHROMIUM = shutil.which("chromium")
needs_browser = pytest.mark.skipif(
    CHROMIUM is None, reason="needs Debian's chromium on PATH for the browser test (apt-get install chromium; "
                             ".ci/install-browser.sh does it in CI)")
WINDOW = (1280, 2000)
# Appended to a copy of the page: once every image has loaded or failed, write what the browser
# made of the page into the DOM, for --dump-dom to hand back.
PROBE = """<script>
addEventListener("load", () => {
  const seen = {
    images: [...document.images].map(i => {
      const r = i.getBoundingClientRect();
      return {width: i.naturalWidth, height: i.naturalHeight, box: [r.left, r.top, r.right, r.bottom]};
    }),
    rows: [...document.querySelectorAll("tbody tr")].map(tr => [...tr.cells].map(td => td.textContent)),
  };
  const out = document.createElement("pre");
  out.id = "probe";
  out.textContent = JSON.stringify(seen);
  document.body.appendChild(out);
});
</script>"""


def _chromium(page: Path, tmp_path: Path, *args: str) -> str:
    profile = tmp_path / f"profile-{len(list(tmp_path.glob('profile-*')))}"
    done = subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run", "--hide-scrollbars",
         "--force-device-scale-factor=1", f"--user-data-dir={profile}", f"--window-size={WINDOW[0]},{WINDOW[1]}",
         *args, page.as_uri()],
        capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def _seen(page_html: str, tmp_path: Path, name: str) -> dict:
    """What chromium rendered: each image's decoded size and box, each table row's cell texts."""
    page = tmp_path / name
    page.write_text(page_html.replace("</body>", PROBE + "</body>"))
    dom = _chromium(page, tmp_path, "--dump-dom")
    found = re.search(r'<pre id="probe">(.*?)</pre>', dom, re.S)
    assert found, "the probe did not run: " + dom[-500:]
    import html

    return json.loads(html.unescape(found.group(1)))


def _screenshot(page_html: str, tmp_path: Path, name: str) -> np.ndarray:
    from PIL import Image

    page, shot = tmp_path / f"{name}.html", tmp_path / f"{name}.png"
    page.write_text(page_html)
    _chromium(page, tmp_path, f"--screenshot={shot}")
    with Image.open(shot) as image:
        return np.asarray(image.convert("L"), dtype=float)


def _broken(page_html: str) -> str:
    """The page with every figure's base64 damaged (valid characters, not an image any more)."""
    return DATA_URI.sub(lambda m: f'<img src="data:image/png;base64,{"A" * 64}', page_html)


@needs_browser
def test_the_browser_renders_every_table_row_and_decodes_every_figure(folder, tmp_path):
    page = build_report([folder]).html
    seen = _seen(page, tmp_path, "page.html")
    assert len(seen["images"]) == len(list((folder / "plots").glob("*.png")))
    assert all(i["width"] > 100 and i["height"] > 100 for i in seen["images"]), seen["images"]
    rows = seen["rows"]
    assert ["ts-keeps-accuracy", "Guo et al. 2017"] == rows[0][:2] and rows[0][-1] == "holds"
    summary = [r for r in rows if r[:2] in (["uncalibrated", "test"], ["temperature", "test"])]
    assert len(summary) == 2 and all(re.fullmatch(r"0\.\d+ ± 0\.\d+", r[3]) for r in summary)  # accuracy
    # the same probe sees a page whose figures do not decode: the check above can fail
    assert all(i["width"] == 0 for i in _seen(_broken(page), tmp_path, "broken.html")["images"])


@needs_browser
def test_screenshot_shows_the_figures_and_a_broken_page_differs(folder, tmp_path):
    page = build_report([folder]).html
    boxes = [i["box"] for i in _seen(page, tmp_path, "probe.html")["images"]]
    good = _screenshot(page, tmp_path, "good")
    assert good.shape == (WINDOW[1], WINDOW[0])
    assert good.std() > 20, "the screenshot is (nearly) blank"
    left, top, right, bottom = (round(v) for v in boxes[0])
    assert bottom - top > 200 and bottom <= WINDOW[1], f"the first figure {boxes[0]} is not drawn in the screenshot"
    figure = good[top:bottom, left:right]
    assert figure.std() > 20 and (figure < 128).mean() > 0.05, "no drawing where the first figure is"
    broken = _screenshot(_broken(page), tmp_path, "broken")[top:bottom, left:right]
    assert np.abs(figure - broken).mean() > 20, "a page whose figures do not decode looks the same"
