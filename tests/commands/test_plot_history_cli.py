import json
import re
import subprocess
import sys

import matplotlib.image
import pytest

from mmalign.cli import main


def write_run(run_dir, n_epochs=5, warmup=2):
    run_dir.mkdir(parents=True)
    history = []
    for epoch in range(1, n_epochs + 1):
        warm = epoch <= warmup
        record = {"epoch": epoch, "warmup": warm, "lr": {"backbone": 0.001}, "seconds": 2.1}
        phase = "warmup" if warm else "complete"
        record[f"{phase}/backbone"] = 0.5 / epoch
        record[f"{phase}/main"] = 0.45 / epoch
        if not warm:
            record["missing/backbone"] = 0.6 / epoch
            record["complete/fitter"] = 0.003 / epoch
        for setting, offset in (("A", 0.0), ("B", 0.1)):
            record[f"valid_{setting}"] = {"mae": 1.0 - 0.05 * epoch + offset, "corr": 0.1}
        history.append(record)
    (run_dir / "history.json").write_text(json.dumps(history, indent=1))
    return run_dir


def test_default_output(tmp_path, capsys):
    run_dir = write_run(tmp_path / "mm-align_t-v_p0.1_s0")
    assert main(["plot-history", str(run_dir)]) == 0
    out = run_dir / "history.png"
    assert capsys.readouterr().out.strip() == str(out)
    image = matplotlib.image.imread(out)
    assert image.shape[:2] == (400, 1000)
    assert image[..., :3].std() > 0.01


def test_out_and_metric(tmp_path, capsys):
    run_dir = write_run(tmp_path / "run", warmup=0)
    out = tmp_path / "figs" / "curves.png"
    assert main(["plot-history", str(run_dir), "--out", str(out), "--metric", "corr"]) == 0
    assert capsys.readouterr().out.strip() == str(out)
    assert out.is_file()
    assert not (run_dir / "history.png").exists()


@pytest.mark.parametrize(
    ("setup", "extra", "match"),
    [
        ("none", [], r"run: no such run folder\."),
        ("empty_dir", [], r"run: no history\.json in this folder"),
        ("bad_json", [], r"history\.json: not a readable JSON file"),
        ("not_list", [], r"history\.json: must be a JSON list of epoch records"),
        ("no_epochs", [], r"history\.json: holds no epoch yet"),
        ("ok", ["--out", "x.pdf"], r"`--out` must end in \.png; got 'x\.pdf'"),
        ("ok", ["--metric", "acc7"], r"`metric` must be one of \['corr', 'mae'\]"),
    ],
)
def test_errors(tmp_path, capsys, setup, extra, match):
    run_dir = tmp_path / "run"
    if setup == "ok":
        write_run(run_dir)
    elif setup != "none":
        run_dir.mkdir()
        content = {"bad_json": "[{", "not_list": '{"epoch": 1}', "no_epochs": "[]"}.get(setup)
        if content is not None:
            (run_dir / "history.json").write_text(content)
    assert main(["plot-history", str(run_dir), *extra]) == 2
    err = capsys.readouterr().err
    assert err.startswith("mmalign: error: ") and err.count("\n") == 1  # one line
    assert re.search(match, err), err
    assert not (run_dir / "history.png").exists()


def test_errors_raise_with_match(tmp_path):
    from mmalign.commands.plot_history import read_history
    from mmalign.validation import DataError

    with pytest.raises(DataError, match=r"no such run folder"):
        read_history(tmp_path / "missing")
    with pytest.raises(DataError, match=r"no history\.json"):
        read_history(tmp_path)


def test_no_abbreviated_options(tmp_path, capsys):
    run_dir = write_run(tmp_path / "run")
    with pytest.raises(SystemExit):
        main(["plot-history", str(run_dir), "--me", "corr"])
    assert "unrecognized arguments: --me" in capsys.readouterr().err


def test_import_is_light():
    # CLI start-up: the command module must not pull in matplotlib or torch
    code = (
        "import sys, mmalign.commands.plot_history; "
        "print(sorted(m for m in ('matplotlib', 'torch') if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"
