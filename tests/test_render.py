"""Rendering with every Graphviz renderer found: SVG as XML, layout from -Tjson, files.

The tests run once per renderer found (the system ``dot``, graphviz-pure, or
the one named by CHAINRULE_DOT) and skip only when none is installed.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import stat
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_draw import NASTY
from test_explain import network_222

import chainrule as cr
from chainrule.engine import iter_graph
from chainrule.viz import render
from chainrule.viz.dot import visible_text

FOUND = render.find_renderers()
SVG = "{http://www.w3.org/2000/svg}"

renderers = pytest.mark.parametrize(
    "renderer",
    [pytest.param(r, id=f"{r.name}:{Path(r.path).name}") for r in FOUND]
    or [pytest.param(None, marks=pytest.mark.skip(reason="no Graphviz renderer installed"))],
)


def _svg(d: cr.draw.__class__, renderer: render.Renderer) -> ET.Element:  # type: ignore[name-defined]
    return ET.fromstring(d.svg(renderer))


def _groups(root: ET.Element, cls: str) -> dict[str, ET.Element]:
    """SVG groups of one class (node, edge, cluster) by their <title>."""
    out = {}
    for g in root.iter(f"{SVG}g"):
        if g.get("class") == cls:
            title = g.find(f"{SVG}title")
            assert title is not None
            out[title.text or ""] = g
    return out


def _texts(g: ET.Element) -> list[str]:
    """The lines of text in an SVG group (spans on one baseline joined)."""
    lines: list[str] = []
    last_y = None
    for t in g.iter(f"{SVG}text"):
        y = t.get("y")
        if y == last_y and lines:
            lines[-1] += t.text or ""
        else:
            lines.append(t.text or "")
        last_y = y
    return lines


@renderers
def test_svg_of_222_has_every_node_and_its_text(renderer: render.Renderer) -> None:
    v = network_222()
    v["E_total"].backward()
    d = cr.draw(v["E_total"], highlight=[v["w5"], v["w1"]])
    root = _svg(d, renderer)
    nodes = _groups(root, "node")
    assert set(nodes) == {n.id for n in d.model.nodes}
    for n in d.model.nodes:
        shown = " ".join(_texts(nodes[n.id]))
        for row in n.rows:
            for word in row.plain().split():
                if word not in ("/", "|"):
                    assert word in shown, (n.id, word, shown)
    edges = _groups(root, "edge")
    assert len(edges) == len(d.model.edges)
    # The caption is drawn too.
    all_text = " ".join(_texts(root))
    assert "= w5.grad" in all_text and "= w1.grad" in all_text


@renderers
@pytest.mark.parametrize("name", NASTY)
def test_nasty_names_render_as_written(renderer: render.Renderer, name: str) -> None:
    a = cr.Value(2.0, name=name)
    b = a.tanh()
    b.name = "out"
    root = _svg(cr.draw(b), renderer)  # parses: the SVG is well-formed XML
    node = _groups(root, "node")["v0"]
    lines = _texts(node)
    # An unnamed leaf is drawn with the name explain gives it (leaf#1).
    expected = visible_text(name) if name else [cr.explain(b, a).label(a)]
    # Graphviz may drop spaces at the ends of a line; the rest is exact.
    assert [t.strip() for t in lines[: len(expected)]] == [x.strip() for x in expected]


@pytest.mark.skipif(not FOUND, reason="no Graphviz renderer installed")
@given(st.text(min_size=1, max_size=12))
@settings(max_examples=25, deadline=None)
def test_escaping_property_through_every_renderer(name: str) -> None:
    for renderer in FOUND:
        a = cr.Value(1.0, name=name)
        root = _svg(cr.draw(a * 3.0), renderer)
        texts = _texts(_groups(root, "node")["v0"])
        # Empty lines draw nothing and edge spaces may go: compare without whitespace.
        expected = "".join("".join(visible_text(name)).split())
        got = "".join("".join(texts).split())
        assert got.startswith(expected + "data")


def _positions(d: cr.draw.__class__, renderer: render.Renderer) -> dict[str, tuple[float, float]]:  # type: ignore[name-defined]
    layout = json.loads(d.pipe("json", renderer))
    pos = {}
    for obj in layout["objects"]:
        if "pos" in obj:
            x, y = obj["pos"].split(",")
            pos[obj["name"]] = (float(x), float(y))
    return pos


@renderers
def test_layout_left_to_right_puts_every_weight_left_of_the_loss(
    renderer: render.Renderer,
) -> None:
    v = network_222()
    d = cr.draw(v["E_total"])
    pos = _positions(d, renderer)
    loss = pos[d.model.find("E_total").id]
    for p in d.model.by_role("parameter"):
        assert pos[p.id][0] < loss[0], p.node.name
    # Top to bottom: Graphviz's y axis points up, so the loss is lowest.
    d_tb = cr.draw(v["E_total"], rankdir="TB")
    pos_tb = _positions(d_tb, renderer)
    loss_tb = pos_tb[d_tb.model.find("E_total").id]
    assert all(pos_tb[p.id][1] > loss_tb[1] for p in d_tb.model.by_role("parameter"))


@renderers
def test_operands_keep_their_order(renderer: render.Renderer) -> None:
    # ordering=in: the first operand of each op sits above the second (LR layout).
    a, b = cr.Value(1.0, name="first"), cr.Value(2.0, name="second")
    for out in (a - b, b - a):
        d = cr.draw(out)
        pos = _positions(d, renderer)
        (op,) = d.model.by_role("op")
        tails = [e.tail for e in d.model.edges if e.head == op.id]
        assert pos[tails[0]][1] > pos[tails[1]][1]


@renderers
def test_same_graph_same_picture(renderer: render.Renderer) -> None:
    one = cr.draw(network_222()["E_total"]).svg(renderer)
    two = cr.draw(network_222()["E_total"]).svg(renderer)
    assert one == two


@renderers
def test_save_writes_each_format(renderer: render.Renderer, tmp_path: Path) -> None:
    v = network_222()
    d = cr.draw(v["E_total"], highlight=v["w1"])
    d.save(tmp_path / "g.svg", renderer)
    ET.parse(tmp_path / "g.svg")
    d.save(tmp_path / "g.png", renderer)
    assert (tmp_path / "g.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    if "pdf" in renderer.formats:
        d.save(tmp_path / "g.pdf", renderer)
        assert (tmp_path / "g.pdf").read_bytes()[:5] == b"%PDF-"


@renderers
def test_tensor_graph_renders(renderer: render.Renderer) -> None:
    w = cr.Tensor(np.arange(4.0).reshape(2, 2), requires_grad=True, name="W1")
    big = cr.Tensor(np.ones((5, 5)), requires_grad=True, name="big")
    loss = (w @ cr.Tensor([1.0, 2.0])).sum() + big.sum()
    loss.backward()
    root = _svg(cr.draw(loss, highlight=w), renderer)
    text = " ".join(_texts(root))
    assert "W1 f64[2,2]" in text and "big f64[5,5]" in text
    cells = [t.text for t in root.iter(f"{SVG}text")]
    assert {"mean", "std", "min", "max", "data", "grad"} <= set(cells)
    assert [f"{v:g}" for v in w.data.ravel()] == [c for c in cells if c in ("0", "1", "2", "3")][:4]


@renderers
@pytest.mark.parametrize("shape", [(0,), (3, 0), (2, 0, 3)])
def test_empty_tensors_render_and_step(renderer: render.Renderer, shape, tmp_path: Path) -> None:
    from chainrule.viz.stepper import backward_steps, write_html

    x = cr.Tensor(np.zeros(shape), requires_grad=True, name="x")
    loss = (x * 3.0).tanh().sum()
    loss.name = "loss"
    steps = backward_steps(loss)
    loss.backward()
    assert steps[-1].grads[x].shape == x.grad.shape == shape
    title = f"x f64[{','.join(map(str, shape))}]"
    text = " ".join(_texts(_svg(cr.draw(loss), renderer)))
    assert title in text and "data: no elements" in text and "grad: no elements" in text
    page = write_html(loss, tmp_path / "backward.html", renderer=renderer)
    body = page.read_text(encoding="utf-8")
    assert body.count('<div class="frame"') == len(steps) + 1
    assert title in body and "data: no elements" in body


@renderers
def test_jupyter_shows_svg(renderer: render.Renderer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(render, "find_renderers", lambda: [renderer])
    d = cr.draw(network_222()["E_total"])
    bundle = d._repr_mimebundle_()
    assert list(bundle) == ["image/svg+xml"]  # the picture, not the no-renderer fallback
    root = ET.fromstring(bundle["image/svg+xml"])
    assert set(_groups(root, "node")) == {n.id for n in d.model.nodes}
    assert len(_groups(root, "edge")) == len(d.model.edges)
    assert "E_total" in " ".join(_texts(root))


def test_pdf_falls_through_to_a_renderer_that_can(monkeypatch: pytest.MonkeyPatch) -> None:
    pure = render.Renderer("graphviz-pure", "/nowhere/graphviz-pure")
    monkeypatch.setattr(render, "find_renderers", lambda: [pure])
    with pytest.raises(render.RendererNotFoundError, match="writes pdf"):
        render.render("digraph {}", "pdf")
    with pytest.raises(ValueError, match="unknown format"):
        render.render("digraph {}", "bmp")


def test_a_failing_renderer_reports_its_error(tmp_path: Path) -> None:
    fake = tmp_path / "dot"
    fake.write_text("#!/bin/sh\necho 'syntax error in line 1' >&2\nexit 3\n")
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    with pytest.raises(render.RenderError, match=r"exit status 3.*syntax error"):
        render.Renderer("dot", str(fake)).run("digraph {}", "svg")


def test_discovery_order(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    fake = tmp_path / "my-dot"
    fake.write_text("#!/bin/sh\nexit 0\n")
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    # The environment variable comes first.
    monkeypatch.setenv(render.ENV_VAR, str(fake))
    assert render.find_renderers()[0].path == str(fake)
    # With nothing on PATH, graphviz-pure is still found next to the interpreter.
    monkeypatch.delenv(render.ENV_VAR)
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    venv_bin = tmp_path / "venv" / "bin"
    venv_bin.mkdir(parents=True)
    pure = venv_bin / "graphviz-pure"
    pure.write_text("#!/bin/sh\nexit 0\n")
    pure.chmod(pure.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setattr(sys, "executable", str(venv_bin / "python"))
    assert [(r.name, r.path) for r in render.find_renderers()] == [("graphviz-pure", str(pure))]
    # And with nothing at all, a clear error.
    monkeypatch.setattr(sys, "executable", str(tmp_path / "python"))
    assert render.find_renderers() == []
    with pytest.raises(render.RendererNotFoundError, match="pip install graphviz-pure"):
        render.render("digraph {}", "svg")
    assert os.environ["PATH"] == str(tmp_path / "empty")


def _docs_script():
    import importlib.util

    path = Path(__file__).resolve().parent.parent / "scripts" / "render_docs_images.py"
    spec = importlib.util.spec_from_file_location("render_docs_images", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_docs_pictures_are_committed() -> None:
    script = _docs_script()
    text = script.DOC.read_text(encoding="utf-8")
    blocks = script.picture_blocks(text)
    assert len(blocks) == 3
    saved = [n for b in blocks for n in re.findall(r'\.save\("docs/images/([^"]+)"\)', b)]
    shown = re.findall(r"\]\(images/([^)]+)\)", text)
    assert set(shown) <= set(saved)
    for name in saved:
        assert (script.ROOT / "docs" / "images" / name).is_file(), name


@pytest.mark.skipif(not FOUND, reason="no Graphviz renderer installed")
def test_docs_picture_code_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(render.ENV_VAR, raising=False)
    script = _docs_script()
    written = script.run(tmp_path, FOUND[0].path)
    assert {p.name for p in written} == {
        "worked-example.svg",
        "worked-example.png",
        "mlp-clustered.svg",
        "mlp-collapsed.svg",
        "tensor-graph.svg",
    }
    for p in written:
        if p.suffix == ".svg":
            texts = " ".join(t.text or "" for t in ET.parse(p).getroot().iter(f"{SVG}text"))
            assert "loss" in texts or "E_total" in texts


# ---------------------------------------------------------------------------
# The backward stepper page, in a real browser
# ---------------------------------------------------------------------------

CHROMIUM = next(
    (p for p in map(shutil.which, ("chromium", "chromium-browser", "google-chrome")) if p), None
)


@pytest.fixture(scope="module")
def stepper_page(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, cr.Value], int]:
    if not FOUND:
        pytest.skip("no Graphviz renderer installed")
    v = network_222()
    page = cr.draw_backward(v["E_total"], tmp_path_factory.mktemp("stepper") / "backward.html")
    n_frames = page.read_text(encoding="utf-8").count('<div class="frame"')
    return page, v, n_frames


def test_stepper_page_is_self_contained(stepper_page) -> None:
    page, v, n_frames = stepper_page
    text = page.read_text(encoding="utf-8")
    steps = [n for n in iter_graph([v["E_total"]]) if n.requires_grad]
    assert n_frames == len(steps) + 1  # one per visited node, plus "before"
    assert all(n.grad is None for n in v.values())
    # No network: no external scripts, styles or images; URLs only as XML namespaces.
    assert not re.search(r"<(script|link|img|iframe)[^>]*\b(src|href)=", text)
    urls = set(re.findall(r"https?://[^\s\"'<>]+", text))
    assert urls <= {"http://www.w3.org/2000/svg", "http://www.w3.org/1999/xlink"}
    # Before the pass nothing is computed; the last frame shows backward's result.
    frames = text.split('<div class="frame"')[1:]
    assert "grad 0.08217" not in frames[0] and "grad not computed" in frames[0]
    v["E_total"].backward()
    (g,) = cr.grad(v["E_total"], v["w5"])
    assert f"grad {g.data:.4g}" in frames[-1]


def _chromium(*args: str) -> subprocess.CompletedProcess[str]:
    assert CHROMIUM is not None
    base = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run"]
    return subprocess.run([*base, *args], capture_output=True, text=True, timeout=120, check=True)


def _visible_frame(dom: str) -> tuple[int, str]:
    """The step the page shows and the markup of its (only) visible frame."""
    step = int(re.search(r'<body[^>]*data-step="(\d+)"', dom).group(1))  # type: ignore[union-attr]
    frames = re.findall(r'<div class="frame" data-step="(\d+)"([^>]*)>(.*?)</div>', dom, re.S)
    shown = [(int(k), body) for k, attrs, body in frames if "hidden" not in attrs]
    assert len(shown) == 1 and shown[0][0] == step
    return shown[0]


def _node_text(frame: str, node_id: str) -> str:
    m = re.search(rf"<title>{node_id}</title>(.*?)</g>", frame, re.S)
    assert m is not None
    return " ".join(re.findall(r"<text[^>]*>([^<]*)</text>", m.group(1)))


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed")
def test_stepper_in_a_headless_browser(stepper_page, tmp_path: Path) -> None:
    page, v, n_frames = stepper_page
    w5_id = cr.draw(v["E_total"]).model.find("w5").id
    # Step through every frame with the arrow key (the page's #play does that).
    dom = _chromium("--dump-dom", page.as_uri() + "#play").stdout
    step, frame = _visible_frame(dom)
    assert step == n_frames - 1
    (g,) = cr.grad(v["E_total"], v["w5"])
    assert _node_text(frame, w5_id) == f"w5 data 0.4 grad {g.data:.4g}"
    # A frame in the middle, reached directly, shows w5 not yet computed.
    dom = _chromium("--dump-dom", page.as_uri() + "#step=3").stdout
    step, frame = _visible_frame(dom)
    assert step == 3 and _node_text(frame, w5_id) == "w5 data 0.4 grad not computed"
    shot = tmp_path / "stepper.png"
    _chromium(f"--screenshot={shot}", "--window-size=1600,900", page.as_uri() + "#play")
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
