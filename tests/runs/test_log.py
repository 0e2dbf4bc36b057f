import json
import os
import re
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from mmalign.runs.log import RunLog
from mmalign.validation import ConfigError, DataError

STAMP = r"\[\d\d:\d\d:\d\d\] "


def record(epoch, **extra):
    return {"epoch": epoch, "warmup": False, "complete/main": 1.0 / epoch, **extra}


def read_history(run_dir):
    return json.loads((run_dir / "history.json").read_text())


def test_lines_are_written_live_with_timestamp_and_echoed(tmp_path):
    echoed = []
    log = RunLog(tmp_path / "run", echo=echoed.append)
    log.line("epoch 1/3  loss 0.5")
    # readable before close (what `tail -f` sees)
    text = (tmp_path / "run" / "train.log").read_text()
    assert re.fullmatch(STAMP + r"epoch 1/3  loss 0\.5\n", text)
    log.line("two\nlines")
    lines = (tmp_path / "run" / "train.log").read_text().splitlines()
    assert [re.sub(STAMP, "", s) for s in lines] == ["epoch 1/3  loss 0.5", "two", "lines"]
    assert all(re.match(STAMP, s) for s in lines)
    assert echoed == ["epoch 1/3  loss 0.5", "two\nlines"]  # no timestamp on the echo
    log.close()
    log.close()  # idempotent
    assert log.closed


def test_no_echo(tmp_path):
    with RunLog(tmp_path, echo=None) as log:
        log.line("quiet")
    assert log.closed
    assert (tmp_path / "train.log").read_text().endswith("] quiet\n")


def test_fresh_log_truncates_and_resets_history(tmp_path):
    (tmp_path / "train.log").write_text("old line\n")
    (tmp_path / "history.json").write_text(json.dumps([record(1), record(2)]))
    with RunLog(tmp_path, echo=None) as log:
        assert log.history == []
        assert read_history(tmp_path) == []
        log.line("new")
    assert "old line" not in (tmp_path / "train.log").read_text()


def test_resume_appends_and_continues_history(tmp_path):
    with RunLog(tmp_path, echo=None) as log:
        log.line("first run")
        for epoch in (1, 2, 3):
            log.epoch(record(epoch))
    # resume.pt was saved after epoch 2: epoch 3 is trained again
    with RunLog(tmp_path, echo=None, resume=True, resume_epoch=2) as log:
        assert [r["epoch"] for r in log.history] == [1, 2]
        assert [r["epoch"] for r in read_history(tmp_path)] == [1, 2]
        log.line("second run")
        log.epoch(record(3, seconds=1.5))
    lines = (tmp_path / "train.log").read_text().splitlines()
    assert re.sub(STAMP, "", lines[0]) == "first run"
    assert re.fullmatch(r"--- resumed \d{4}-\d\d-\d\dT\d\d:\d\d:\d\d.* ---", lines[1])
    assert re.sub(STAMP, "", lines[2]) == "second run"
    assert read_history(tmp_path) == [record(1), record(2), record(3, seconds=1.5)]


def test_resume_keeps_everything_without_epoch_and_starts_empty_without_file(tmp_path):
    (tmp_path / "history.json").write_text(json.dumps([record(1), record(2)]))
    with RunLog(tmp_path, echo=None, resume=True) as log:
        assert [r["epoch"] for r in log.history] == [1, 2]
    with RunLog(tmp_path / "new", echo=None, resume=True, resume_epoch=4) as log:
        assert log.history == []
    assert (tmp_path / "new" / "train.log").read_text().startswith("--- resumed ")


def test_history_valid_after_every_epoch(tmp_path):
    log = RunLog(tmp_path, echo=None)
    for epoch in range(1, 4):
        rec = record(
            epoch,
            valid_A={"mae": np.float32(0.5), "corr": np.float64(0.25), "n": 3},
            lr={"backbone": 1e-3},
            tag="x",
        )
        log.epoch(rec)
        history = read_history(tmp_path)  # before close
        assert [r["epoch"] for r in history] == list(range(1, epoch + 1))
        assert history[-1]["valid_A"] == {"mae": 0.5, "corr": 0.25, "n": 3}
        assert history[-1]["warmup"] is False and history[-1]["tag"] == "x"
    assert log.history == history
    # no temporary files left behind
    assert sorted(p.name for p in tmp_path.iterdir()) == ["history.json", "train.log"]
    log.close()


def test_crash_without_close_keeps_log_and_history(tmp_path):
    script = textwrap.dedent(
        """
        import os, sys
        from mmalign.runs.log import RunLog
        log = RunLog(sys.argv[1], echo=None)
        log.line("epoch 1/5")
        log.epoch({"epoch": 1, "complete/main": 0.5})
        log.line("epoch 2/5")
        log.epoch({"epoch": 2, "complete/main": 0.4})
        os._exit(3)  # no close(), no flush at exit, no finalisers
        """
    )
    done = subprocess.run([sys.executable, "-c", script, str(tmp_path)], check=False)
    assert done.returncode == 3
    lines = (tmp_path / "train.log").read_text().splitlines()
    assert [re.sub(STAMP, "", s) for s in lines] == ["epoch 1/5", "epoch 2/5"]
    assert [r["epoch"] for r in read_history(tmp_path)] == [1, 2]


def test_history_is_replaced_atomically(tmp_path, monkeypatch):
    log = RunLog(tmp_path, echo=None)
    log.epoch(record(1))
    calls = []
    real_replace = os.replace

    def spy(src, dst):
        calls.append((src, dst))
        # the new content is complete in a temporary file in the same folder
        assert os.path.dirname(src) == str(tmp_path)
        assert [r["epoch"] for r in json.loads(open(src).read())] == [1, 2]
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", spy)
    log.epoch(record(2))
    assert len(calls) == 1 and calls[0][1] == tmp_path / "history.json"

    # a write that fails half-way leaves the previous file intact and no temp file
    def boom(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(OSError, match="disk full"):
        log.epoch(record(3))
    assert [r["epoch"] for r in read_history(tmp_path)] == [1, 2]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["history.json", "train.log"]
    log.close()


@pytest.mark.parametrize(
    ("rec", "match"),
    [
        ({"loss": 1.0}, r"`record` must be a dict with an integer 'epoch'"),
        ({"epoch": True}, r"`record` must be a dict with an integer 'epoch'"),
        ({"epoch": 1, "bad": object()}, r"`record` must hold JSON-able values only"),
    ],
)
def test_bad_record(tmp_path, rec, match):
    with RunLog(tmp_path, echo=None) as log:
        with pytest.raises(ConfigError, match=match):
            log.epoch(rec)
        assert log.history == [] and read_history(tmp_path) == []


def test_write_after_close(tmp_path):
    log = RunLog(tmp_path, echo=None)
    log.close()
    with pytest.raises(ConfigError, match="is closed"):
        log.line("late")
    with pytest.raises(ConfigError, match="is closed"):
        log.epoch(record(1))


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"resume_epoch": 2}, r"`resume_epoch` must be None unless resume=True"),
        ({"resume": True, "resume_epoch": -1}, r"`resume_epoch` must be an integer >= 0"),
        ({"resume": True, "resume_epoch": 1.5}, r"`resume_epoch` must be an integer >= 0"),
    ],
)
def test_bad_arguments(tmp_path, kwargs, match):
    with pytest.raises(ConfigError, match=match):
        RunLog(tmp_path, echo=None, **kwargs)


@pytest.mark.parametrize(
    ("content", "match"),
    [
        ("{not json", r"history\.json: cannot read the epoch history to resume"),
        ('{"epoch": 1}', r"history\.json: the epoch history must be a JSON list"),
        ('[{"loss": 1}]', r"history\.json: the epoch history must be a JSON list"),
    ],
)
def test_resume_from_bad_history(tmp_path, content, match):
    (tmp_path / "train.log").write_text("kept\n")
    (tmp_path / "history.json").write_text(content)
    with pytest.raises(DataError, match=match):
        RunLog(tmp_path, echo=None, resume=True)
    # nothing was touched
    assert (tmp_path / "history.json").read_text() == content
    assert (tmp_path / "train.log").read_text() == "kept\n"
