import io

from mmalign.experiments.progress import GridProgress


def test_counts_and_output():
    out = io.StringIO()
    bar = GridProgress(4, skipped=2, workers=2, file=out)
    bar.started(2)
    assert (bar.done, bar.running, bar.left) == (0, 2, 4)
    bar.finished(ok=True)
    bar.started()
    bar.finished(ok=False)
    assert (bar.done, bar.failed, bar.running, bar.left) == (1, 1, 1, 2)
    bar.write("a note")
    bar.close()
    text = out.getvalue()
    assert "2 already done" in text and "running=1" in text and "left=2" in text
    assert "failed=1" in text and "a note" in text and "2/4" in text


def test_disabled_prints_nothing_but_counts():
    out = io.StringIO()
    with GridProgress(2, file=out, disable=True) as bar:
        bar.started()
        bar.finished(ok=True)
        assert bar.left == 1
    assert out.getvalue() == ""
