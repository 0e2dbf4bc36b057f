import collections
import os
import pickle
import sys
import types
import zipfile

import numpy as np
import pytest

from mmalign.data.safe_pickle import load_pickle, load_torch_tensors, loads_pickle
from mmalign.validation import DataError


class _RunsCode:
    """Unpickling this calls os.system: the classic pickle exploit."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_plain_containers_and_numpy_round_trip(tmp_path):
    obj = {
        "train": {
            "x": np.arange(6, dtype=np.float32).reshape(2, 3),
            "ids": np.array(["a", "b"], dtype=object),
            "raw": np.array([b"x", b"y"]),
            "n": np.int64(3),
            "f": np.float32(1.5),
        },
        "list": [1, 2.5, "s", b"bytes", None, True, (1, 2), {3}, frozenset({4})],
        "od": collections.OrderedDict(a=1),
        "dd": collections.defaultdict(list, {"k": [1]}),
    }
    for protocol in (2, 4, 5):
        path = tmp_path / f"p{protocol}.pkl"
        path.write_bytes(pickle.dumps(obj, protocol=protocol))
        out = load_pickle(path)
        np.testing.assert_array_equal(out["train"]["x"], obj["train"]["x"])
        assert out["train"]["ids"].tolist() == ["a", "b"]
        assert out["train"]["raw"].tolist() == [b"x", b"y"]
        assert out["train"]["n"] == 3 and out["train"]["f"] == np.float32(1.5)
        assert out["list"] == obj["list"]
        assert out["od"] == {"a": 1} and out["dd"]["k"] == [1]


def test_code_running_pickle_is_refused_and_code_does_not_run(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pkl"
    path.write_bytes(pickle.dumps({"train": _RunsCode(marker)}))
    with pytest.raises(DataError, match=r"evil\.pkl.*refused.*`(posix|os|nt)\.system`"):
        load_pickle(path)
    assert not marker.exists()


def test_trusted_opt_out_runs_the_ordinary_unpickler(tmp_path):
    marker = tmp_path / "ran"
    path = tmp_path / "evil.pkl"
    path.write_bytes(pickle.dumps(_RunsCode(marker)))
    load_pickle(path, trusted=True)
    assert marker.exists()


@pytest.mark.parametrize("name", ["builtins.eval", "subprocess.Popen", "numpy.load"])
def test_other_globals_are_refused_by_name(name):
    module, attr = name.rsplit(".", 1)
    data = b"\x80\x02c" + f"{module}\n{attr}\n".encode() + b"."
    with pytest.raises(DataError, match=rf"<bytes>: refused to unpickle global `{name}`"):
        loads_pickle(data)


def test_truncated_and_non_pickle_files(tmp_path):
    good = pickle.dumps({"a": np.zeros(10)})
    truncated = tmp_path / "cut.pkl"
    truncated.write_bytes(good[: len(good) // 2])
    with pytest.raises(DataError, match=r"cut\.pkl: not a readable pickle"):
        load_pickle(truncated)
    text = tmp_path / "notes.pkl"
    text.write_text("hello, this is text")
    with pytest.raises(DataError, match=r"notes\.pkl: not a readable pickle"):
        load_pickle(text)


def test_missing_file(tmp_path):
    with pytest.raises(DataError, match=r"nope\.pkl: file does not exist"):
        load_pickle(tmp_path / "nope.pkl")


def _save_with_module_factory(path):
    import torch

    module = types.ModuleType("create_dataset")

    def return_unk():
        return 0

    return_unk.__module__, return_unk.__qualname__ = "create_dataset", "return_unk"
    module.return_unk = return_unk
    sys.modules["create_dataset"] = module
    try:
        word2id = collections.defaultdict(lambda: len(word2id))
        word2id["<unk>"], word2id["<pad>"], word2id["movie"]
        word2id.default_factory = return_unk
        emb = torch.arange(12, dtype=torch.float32).reshape(3, 4)
        torch.save((emb, word2id, emb[:, 1:3].t()), path)  # a strided view too
    finally:
        del sys.modules["create_dataset"]


def test_torch_archive_with_defaultdict_factory_loads_without_torch_unpickler(tmp_path):
    path = tmp_path / "embedding_and_mapping.pt"
    _save_with_module_factory(path)
    emb, word2id, view = load_torch_tensors(path)
    np.testing.assert_array_equal(emb, np.arange(12, dtype=np.float32).reshape(3, 4))
    assert emb.dtype == np.float32
    np.testing.assert_array_equal(view, emb[:, 1:3].T)
    assert dict(word2id) == {"<unk>": 0, "<pad>": 1, "movie": 2}
    assert word2id["never seen"] == 0  # the stand-in factory returns the <unk> id


def test_torch_archive_trusted_path_uses_torch_load(tmp_path):
    path = tmp_path / "e.pt"
    _save_with_module_factory(path)
    emb, word2id, _ = load_torch_tensors(path, trusted=True)
    assert tuple(emb.shape) == (3, 4) and word2id["zzz"] == 0


def test_torch_archive_with_code_is_refused(tmp_path):
    import torch

    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pt"
    torch.save({"w": torch.zeros(2), "x": _RunsCode(marker)}, path)
    refused = r"evil\.pt: refused to unpickle global `(posix|os|nt)\.system`"
    with pytest.raises(DataError, match=refused):
        load_torch_tensors(path)
    assert not marker.exists()


def test_torch_legacy_or_corrupt_archive(tmp_path):
    path = tmp_path / "old.pt"
    path.write_bytes(pickle.dumps({"a": 1}))
    with pytest.raises(DataError, match=r"old\.pt: not a torch zip archive"):
        load_torch_tensors(path)
    empty = tmp_path / "empty.pt"
    with zipfile.ZipFile(empty, "w") as z:
        z.writestr("x/other", b"")
    with pytest.raises(DataError, match=r"empty\.pt: torch archive without data\.pkl"):
        load_torch_tensors(empty)
