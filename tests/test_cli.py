"""The ``chainrule`` command line: sub-commands, help, and the tutorial end to end."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest

from chainrule.__main__ import build_parser, main


def test_help_lists_the_subcommands(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert "tutorial" in out
    assert "2-2-2" in out


def test_tutorial_help_lists_its_options(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["tutorial", "--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    for option in (
        "--out",
        "--format",
        "--no-picture",
        "--verbose",
        "--full-picture",
        "--hidden",
        "--update-biases",
        "--order",
    ):
        assert option in out


def test_no_subcommand_prints_help_and_fails(capsys):
    assert main([]) == 2
    assert "tutorial" in capsys.readouterr().out


@pytest.mark.parametrize("argv", [["tutorial", "--format", "yaml"], ["nonsense"]])
def test_bad_arguments_are_usage_errors(argv, capsys):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    assert "invalid choice" in capsys.readouterr().err


def test_parser_defaults():
    args = build_parser().parse_args(["tutorial"])
    assert args.out == "tutorial-out"
    assert args.format == "text"
    assert not args.no_picture


def test_console_script_is_declared():
    scripts = {e.name: e.value for e in metadata.entry_points(group="console_scripts")}
    assert scripts.get("chainrule") == "chainrule.__main__:main"


@pytest.fixture(scope="module")
def base(tmp_path_factory) -> Path:
    """The working folder of the tutorial runs (their pictures go under it)."""
    return tmp_path_factory.mktemp("tutorial")


@pytest.fixture(scope="module")
def runs(base) -> dict[str, subprocess.CompletedProcess[str]]:
    """``python -m chainrule tutorial`` as text and as JSON, run side by side."""
    env = {**os.environ, "PYTHONIOENCODING": "utf-8"}
    commands = {
        # A relative --out, as a person types it, so the printed paths are short.
        "text": [sys.executable, "-m", "chainrule", "tutorial", "--out", "text"],
        "json": [
            sys.executable,
            "-m",
            "chainrule",
            "tutorial",
            "--format",
            "json",
            "--out",
            str(base / "json"),
        ],
    }
    procs = {
        k: subprocess.Popen(
            cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=base, env=env
        )
        for k, cmd in commands.items()
    }
    done = {}
    for k, p in procs.items():
        out, err = p.communicate(timeout=600)
        done[k] = subprocess.CompletedProcess(commands[k], p.returncode, out, err)
    return done


def test_tutorial_exits_zero_with_every_step_in_order(runs):
    run = runs["text"]
    assert run.returncode == 0, run.stderr
    headings = [
        "1. The network, built three ways",
        "2. Forward pass",
        "3. Backward pass",
        "4. The chain rule made visible",
        "5. Training",
        "6. The graph of E_total",
        "Verdict",
    ]
    positions = [run.stdout.index(h) for h in headings]
    assert positions == sorted(positions)
    assert run.stdout.rstrip().endswith("All good.")
    # steps 2 and 3 are derive's lines: here the gradient of w1, beside its published digits
    import chainrule as cr
    from chainrule.tutorial import network, report
    from chainrule.tutorial.reference import PUBLISHED

    net = network.build_values()
    line = cr.derive(net["E_total"], wrt=net["w1"]).line("delta", "w1")
    row = next(r for r in run.stdout.splitlines() if r.lstrip().startswith("δ[w1] = "))
    assert row.lstrip().startswith(report.short_text(line) + " ")
    assert f" {PUBLISHED['dE_total/dw1'].text} " in row


def test_tutorial_progress_goes_to_stderr_only(runs):
    run = runs["text"]
    assert "10000/10000" in run.stderr.replace(",", "")
    assert "update/s" not in run.stdout and "training [" not in run.stdout


def test_tutorial_writes_the_picture(runs, base):
    out = base / runs["text"].args[-1]
    assert (out / "e_total.dot").is_file()
    assert str(Path(runs["text"].args[-1]) / "e_total.dot") in runs["text"].stdout
    dot = (out / "e_total.dot").read_text()
    for name in ("E_total", "w5", "w1", "out_h1"):
        assert name in dot
    if (out / "e_total.svg").exists():
        assert (out / "e_total.svg").read_text().lstrip().startswith(("<?xml", "<svg"))


def test_tutorial_json_is_the_whole_stdout(runs):
    run = runs["json"]
    assert run.returncode == 0, run.stderr
    data = json.loads(run.stdout)  # nothing but JSON on stdout
    assert data["ok"] is True
    figures = data["figures"]
    for key in ("net_h1", "out_o1", "dE_total/dw5", "w5+", "E_total_after_1"):
        assert key in figures
    assert figures["dE_total/dw5"]["published_text"] == "0.082167041"
    assert {"hand", "autodiff", "finite_differences"} <= set(figures["dE_total/dw5"])
    assert "explained" in figures["E_total_after_10000"]
    assert data["picture"]["files"]


def test_text_and_json_agree_on_the_numbers(runs):
    data = json.loads(runs["json"].stdout)
    text = runs["text"].stdout
    for key in ("dE_total/dw1", "w5+", "out_o1"):
        # the default text prints derive's numbers as derive does, to ten significant digits
        figure = data["figures"][key]
        assert figure["derived"] == pytest.approx(figure["autodiff"], rel=1e-12)
        assert f"{figure['derived']:.10g}" in text


def test_plain_progress_bar_without_tqdm(monkeypatch):
    import io

    from chainrule.tutorial import progress_bar

    monkeypatch.setitem(sys.modules, "tqdm", None)  # as if tqdm were not installed
    stream = io.StringIO()
    seen = list(progress_bar(500, stream)(range(500)))
    assert seen == list(range(500))
    assert "500/500" in stream.getvalue()


def test_picture_without_any_renderer_still_writes_the_dot_text(monkeypatch, tmp_path):
    from chainrule.tutorial import write_picture
    from chainrule.viz import render

    monkeypatch.setattr(render, "find_renderers", lambda: [])
    drawn = write_picture(tmp_path / "pic")
    assert (tmp_path / "pic" / "e_total.dot").is_file()
    assert not (tmp_path / "pic" / "e_total.svg").exists()
    assert any(m.startswith("no SVG") for m in drawn["messages"])
    assert any(m.startswith("no PNG") for m in drawn["messages"])


def test_tutorial_default_output_is_short_and_narrow(runs):
    lines = runs["text"].stdout.splitlines()
    assert len(lines) <= 90
    assert max(len(line) for line in lines) <= 100
    assert 'Matt Mazur, "A Step by Step Backpropagation Example"' in runs["text"].stdout


def test_tutorial_verbose_prints_every_table(capsys, runs):
    assert main(["tutorial", "--verbose", "--no-picture"]) == 0
    out = capsys.readouterr().out
    assert len(out.splitlines()) > len(runs["text"].stdout.splitlines()) + 50
    for text in ("| finite differences |", "dE_total/dw6", "path 2 of 2", "| build  | how"):
        assert text in out
        assert text not in runs["text"].stdout


def _png_width(path: Path) -> int:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return int.from_bytes(data[16:20], "big")


def _svg_width_px(path: Path) -> float:
    import re

    head = path.read_text()[:2000]
    m = re.search(r'<svg[^>]*\swidth="([\d.]+)(pt|px)?"', head)
    assert m is not None
    return float(m.group(1)) * (96 / 72 if m.group(2) in (None, "pt") else 1.0)


def test_default_picture_fits_a_laptop_screen(runs, base, tmp_path):
    out = base / runs["text"].args[-1]
    if not (out / "e_total.png").exists():
        pytest.skip("no Graphviz renderer here")
    assert _png_width(out / "e_total.png") <= 1600
    assert _svg_width_px(out / "e_total.svg") <= 1600
    # The full picture is one option away, and is what does not fit.
    from chainrule.tutorial import write_picture

    write_picture(tmp_path, full=True)
    assert _png_width(tmp_path / "e_total.png") > 1600


def test_variant_options_print_their_own_figures(capsys):
    assert main(["tutorial", "--order", "published", "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["variant"]["setup"] == {
        "hidden": 2,
        "update_biases": False,
        "order": "published",
        "description": "output layer updated before the hidden layer's gradients",
    }
    trained = data["variant"]["training"]["autodiff"]
    assert f"{trained['out_o2_after_10000']:.9f}" == "0.984065734"
    assert main(["tutorial", "--hidden", "3", "--update-biases"]) == 0
    captured = capsys.readouterr()
    assert "3 hidden neurons, biases b1 and b2 updated too" in captured.out
    assert "| w12 |" in captured.out and "All good." in captured.out
    assert "10000/10000" in captured.err.replace(",", "")


@pytest.mark.parametrize("value", ["0", "-2", "100"])
def test_hidden_out_of_range_is_a_usage_error(value, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["tutorial", "--hidden", value])
    assert exc.value.code == 2
    assert "hidden must be between 1 and" in capsys.readouterr().err


def test_program_prints_the_compiled_network_which_runs_as_python(capsys):
    import ast
    import math

    from chainrule.tutorial.network import build_values
    from chainrule.tutorial.reference import WEIGHT_NAMES, WEIGHTS

    assert main(["tutorial", "--program"]) == 0
    source = capsys.readouterr().out
    assert source.startswith("def program(w1, w2, w3, w4, w5, w6, w7, w8):")
    lines = {
        n.targets[0].id: ast.unparse(n.value)
        for n in ast.walk(ast.parse(source))
        if isinstance(n, ast.Assign) and isinstance(n.targets[0], ast.Name)
    }
    assert lines["net_h1"] == "w1 * i1 + w2 * i2 + b1"  # forward
    assert lines["d_w5"] == "d_net_o1 * out_h1"  # and backward, as the delta rule
    # The printed text is the program: run it, and it gives autodiff's numbers.
    space: dict = {"exp": math.exp}
    exec(compile(source, "<printed program>", "exec"), space)
    loss, *grads = space["program"](*[WEIGHTS[k] for k in WEIGHT_NAMES])
    net = build_values()
    net["E_total"].backward()
    assert loss == net["E_total"].data
    assert grads == [net[k].grad for k in WEIGHT_NAMES]


@pytest.mark.parametrize("extra", [["--hidden", "3"], ["--format", "json"]])
def test_program_takes_no_variant_or_json(extra, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["tutorial", "--program", *extra])
    assert exc.value.code == 2
    assert "takes no variant options" in capsys.readouterr().err
