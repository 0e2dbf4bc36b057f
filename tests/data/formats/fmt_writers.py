"""Writers of small data files in exactly the layouts of /work/shared/FORMATS.md (sections 1-5).

Each writer returns the path it wrote and the arrays it put there, so tests can compare the
loaded dataset against what is on disk.
"""

from __future__ import annotations

import collections
import json
import pickle
import sys
import types
from pathlib import Path

import numpy as np

SPLITS_MMSA = ("train", "valid", "test")
SIZES = {"train": 4, "valid": 2, "test": 3}


def _padded(rng, n, steps, width, lengths, left):
    """(N, L, D) float32 with non-zero valid rows, zeros elsewhere; left or right padded."""
    x = np.zeros((n, steps, width), dtype=np.float32)
    for i in range(n):
        rows = rng.normal(size=(lengths[i], width)).astype(np.float32) + 0.5
        if left[i]:
            x[i, steps - lengths[i] :] = rows
        else:
            x[i, : lengths[i]] = rows
    return x


# ---------------------------------------------------------------- MMSA (FORMATS.md section 1)
def mmsa_split(rng, n, *, aligned=True, sims=False, left_unaligned=None):
    """One split dict of an MMSA pickle. Returns (split dict, true text lengths)."""
    lt = 39 if sims else 50
    dt, da, dv = 768, (33 if sims else 5), (709 if sims else 20)
    la, lv = (50, 50) if aligned else ((400, 55) if sims else (375, 500))
    text_len = rng.integers(3, lt - 2, size=n)
    # BERT features are non-zero at padded positions too: only the mask tells the length
    text = rng.normal(size=(n, lt, dt)).astype(np.float32)
    bert = np.zeros((n, 3, lt), dtype=np.float32)
    for i in range(n):
        bert[i, 0, : text_len[i]] = rng.integers(100, 3000, size=text_len[i])
        bert[i, 1, : text_len[i]] = 1
    if aligned:
        a_len, v_len = text_len, text_len
        left = np.zeros(n, bool)
    else:
        a_len = rng.integers(1, la, size=n)
        v_len = rng.integers(1, lv, size=n)
        left = np.zeros(n, bool) if left_unaligned is None else left_unaligned
    audio = _padded(rng, n, la, da, a_len, left)
    vision = _padded(rng, n, lv, dv, v_len, left)
    audio[0, 0, 1] = -np.inf  # COVAREP quirk, inside a valid step
    labels = np.round(rng.uniform(-3, 3, size=n), 1).astype(np.float32)
    labels[0] = 0.0
    split = {
        "raw_text": np.array([f"utterance {i}" for i in range(n)], dtype=object),
        "id": np.array([f"vid{i // 2}$_${i}" for i in range(n)]),
        "text": text,
        "text_bert": bert,
        "audio": audio,
        "vision": vision,
        "annotations": np.array(["Negative", "Neutral", "Positive"] * n, dtype=object)[:n],
        "classification_labels": np.sign(labels).astype(np.float32) + 1,
        "regression_labels": labels,
    }
    if not aligned:
        split["audio_lengths"] = list(map(int, a_len))  # stored as a list in some files
        split["vision_lengths"] = np.asarray(v_len, dtype=np.int64)
    if sims:
        for m in "TAV":
            split[f"regression_labels_{m}"] = np.clip(labels / 3, -1, 1).astype(np.float32)
    return split, {"text": text_len, "audio": a_len, "vision": v_len, "left": left}


def write_mmsa(folder: Path, *, aligned=True, sims=False, seed=0, name=None, mutate=None):
    rng = np.random.default_rng(seed)
    data, truth = {}, {}
    for s in SPLITS_MMSA:
        left = None if aligned else (np.arange(SIZES[s]) % 2 == 1)  # mix both padding sides
        data[s], truth[s] = mmsa_split(
            rng, SIZES[s], aligned=aligned, sims=sims, left_unaligned=left
        )
    if mutate:
        mutate(data)
    name = name or (
        "unaligned_39.pkl" if sims else "aligned_50.pkl" if aligned else "unaligned_50.pkl"
    )
    path = Path(folder) / name
    with open(path, "wb") as f:
        pickle.dump(data, f, protocol=pickle.HIGHEST_PROTOCOL)
    return path, data, truth


# ---------------------------------------------------------------- MulT (section 2)
def write_mult(folder: Path, *, aligned=True, iemocap=False, seed=0, name=None, mutate=None):
    rng = np.random.default_rng(seed)
    data, truth = {}, {}
    for s in SPLITS_MMSA:
        n = SIZES[s]
        lt, la, lv = (20, 20, 20) if iemocap else (50, 50, 50) if aligned else (50, 375, 500)
        t_len = rng.integers(2, lt, size=n)
        a_len = t_len if aligned else rng.integers(2, la, size=n)
        v_len = t_len if aligned else rng.integers(2, lv, size=n)
        left = np.ones(n, bool)  # MulT pads on the left
        split = {
            "text": _padded(rng, n, lt, 300, t_len, left).astype(np.float64),
            "audio": _padded(rng, n, la, 74 if iemocap else 5, a_len, left),
            "vision": _padded(rng, n, lv, 35 if iemocap else 20, v_len, left),
        }
        split["audio"][0, la - 1, 0] = -np.inf  # inside the last (valid) step
        if iemocap:
            onehot = np.zeros((n, 4, 2), dtype=np.float32)
            onehot[np.arange(n), :, rng.integers(0, 2, size=n)] = 1
            split["labels"] = onehot
        else:
            split["labels"] = rng.uniform(-3, 3, size=(n, 1, 1)).astype(np.float32)
            split["id"] = np.array([[f"vid{i}_{i + 1}".encode(), b"0.0", b"1.5"] for i in range(n)])
        data[s] = split
        truth[s] = {"text": t_len, "audio": a_len, "vision": v_len}
    if mutate:
        mutate(data)
    prefix = "iemocap" if iemocap else "mosi"
    name = name or (f"{prefix}_data.pkl" if aligned else f"{prefix}_data_noalign.pkl")
    path = Path(folder) / name
    with open(path, "wb") as f:
        pickle.dump(data, f)
    return path, data, truth


# ---------------------------------------------------------------- MISA / BBFN / MM-Align (3)
def _save_embedding_and_mapping(path: Path, vocab: int, rng) -> np.ndarray:
    """torch.save((FloatTensor (V, 300), defaultdict word2id)) with a module-level factory."""
    import torch

    module = types.ModuleType("create_dataset")

    def return_unk():
        return 0

    return_unk.__module__ = "create_dataset"
    return_unk.__qualname__ = "return_unk"
    module.return_unk = return_unk
    sys.modules["create_dataset"] = module
    try:
        word2id = collections.defaultdict(lambda: len(word2id))
        for word in ["<unk>", "<pad>"] + [f"w{i}" for i in range(vocab - 2)]:
            word2id[word]
        word2id.default_factory = return_unk
        emb = rng.normal(size=(vocab, 300)).astype(np.float32)
        torch.save((torch.from_numpy(emb), word2id), path)
    finally:
        del sys.modules["create_dataset"]  # the loading side never has the writer's module
    return emb


def write_misa(folder: Path, *, mosei=False, seed=0, mutate=None, with_empty=True):
    rng = np.random.default_rng(seed)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    vocab = 40
    emb = _save_embedding_and_mapping(folder / "embedding_and_mapping.pt", vocab, rng)
    dv, da = (35, 74) if mosei else (47, 74)
    lists = {}
    for stem in ("train", "dev", "test"):
        items = []
        for k in range(SIZES["valid" if stem == "dev" else stem]):
            length = int(rng.integers(1, 9))
            if with_empty and stem == "train" and k == 1:
                # an all-`sp` segment: words (0,) and visual (0,) 1-D
                words = np.asarray([])  # what np.asarray of an empty list gives: float64
                visual, acoustic = np.zeros(0), np.zeros(0)
                actual = []
            else:
                words = rng.integers(0, vocab, size=length).astype(np.int64)
                visual = rng.normal(size=(length, dv)).astype(np.float32)
                acoustic = rng.normal(size=(length, da)).astype(np.float32)
                actual = [f"w{int(w)}" for w in words]
            if mosei:
                label = rng.uniform(0, 3, size=(1, 7)).astype(np.float32)
                label[0, 0] = rng.uniform(-3, 3)
            else:
                label = np.array([[rng.uniform(-3, 3)]], dtype=np.float32)
            items.append(((words, visual, acoustic, actual), label, f"vid{k}[{k % 2}]"))
        lists[stem] = items
    if mutate:
        mutate(lists)
    for stem, items in lists.items():
        with open(folder / f"{stem}.pkl", "wb") as f:
            pickle.dump(items, f)
    return folder, lists, emb


# ---------------------------------------------------------------- MELD (section 4.1)
def write_meld(folder: Path, *, seed=0, mutate=None):
    rng = np.random.default_rng(seed)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    vocab = 30
    emb = rng.normal(size=(vocab, 300)).astype(np.float32)
    with open(folder / "embedding.p", "wb") as f:
        pickle.dump(emb, f)
    lists = {}
    for stem in ("train", "dev", "test"):
        items = []
        for k in range(SIZES["valid" if stem == "dev" else stem]):
            lt, lv, la = (int(v) for v in rng.integers(1, 7, size=3))
            items.append(
                {
                    "token_ids": [int(t) for t in rng.integers(0, vocab, size=lt)],
                    "video_features": rng.normal(size=(lv, 2048)).astype(np.float32),
                    "audio_features": rng.normal(size=(la, 768)).astype(np.float32),
                    "label": int(k % 7),
                }
            )
        lists[stem] = items
    if mutate:
        mutate(lists)
    for stem, items in lists.items():
        with open(folder / f"{stem}.pkl", "wb") as f:
            pickle.dump(items, f)
    return folder, lists, emb


# ---------------------------------------------------------------- CMU-MultimodalSDK (5)
_METADATA_KEYS = [
    "root name",
    "computational sequence description",
    # the SDK template misses a comma: these two keys are concatenated into one
    "dimension namescomputational sequence version",
    "alignment compatible",
    "dataset name",
    "dataset version",
    "creator",
    "contact",
    "featureset bib citation",
    "dataset bib citation",
]


def write_csd(path: Path, root: str, videos: dict[str, tuple[np.ndarray, np.ndarray]]):
    """One computational sequence: /<root>/data/<vid>/{features,intervals}, /<root>/metadata."""
    import h5py

    with h5py.File(path, "w") as f:
        group = f.create_group(root)
        data = group.create_group("data")
        for vid, (intervals, features) in videos.items():
            g = data.create_group(vid)
            g.create_dataset("features", data=features)
            g.create_dataset("intervals", data=intervals)
        meta = group.create_group("metadata")
        for key in _METADATA_KEYS:
            value = root if key == "root name" else {"dataset name": "CMU_MOSI"}.get(key, "x")
            ds = meta.create_dataset(key, (1,), dtype=h5py.special_dtype(vlen=str))
            ds[0] = json.dumps(value)
    return path
