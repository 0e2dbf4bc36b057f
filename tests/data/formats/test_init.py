import pickle

import numpy as np
import pytest

from mmalign.data.formats import FORMATS, detect_format, load_dataset
from mmalign.validation import ConfigError, DataError


def test_registry_names():
    assert sorted(FORMATS) == ["csd", "meld", "misa", "mmsa", "mult", "native"]


def test_unknown_format_lists_every_valid_name(tmp_path):
    with pytest.raises(
        ConfigError,
        match=r"`format` must be one of \['csd', 'meld', 'misa', "
        r"'mmsa', 'mult', 'native'\]; got 'hdf5'",
    ):
        load_dataset(tmp_path, format="hdf5")


def test_path_that_does_not_exist(tmp_path):
    with pytest.raises(DataError, match=r"nothing_here: path does not exist"):
        detect_format(tmp_path / "nothing_here")
    with pytest.raises(DataError, match=r"nothing_here: path does not exist"):
        load_dataset(tmp_path / "nothing_here", format="mmsa")


def test_unrecognised_folder_and_pickle(tmp_path):
    with pytest.raises(
        DataError,
        match=r"test_unrecognised_folder_and_p0: cannot tell the format \(looked for train\.npz "
        r"or <name>_train\.npz \(native\), \*\.csd files, or train/dev/test\.pkl with "
        r"embedding_and_mapping\.pt \(misa\) or embedding\.p \(meld\)\); pass --format\.$",
    ):
        detect_format(tmp_path)
    path = tmp_path / "stuff.pkl"
    path.write_bytes(pickle.dumps({"train": {"foo": np.zeros(2)}}))
    with pytest.raises(DataError, match=r"stuff\.pkl: cannot tell the format"):
        detect_format(path)


def test_explicit_format_overrides_detection(tmp_path, fmt, quiet):
    path = fmt.write_mmsa(tmp_path, name="whatever.bin")[0]
    assert len(load_dataset(path, format="mmsa").splits["valid"]) == 2


def test_sniffed_pickle_refuses_code(tmp_path):
    import os

    class Evil:
        def __reduce__(self):
            return (os.system, ("true",))

    path = tmp_path / "x.pkl"
    path.write_bytes(pickle.dumps(Evil()))
    with pytest.raises(DataError, match=r"x\.pkl: refused to unpickle global"):
        load_dataset(path)


def test_split_pickle_without_embedding_names_the_file_given(tmp_path, fmt):
    folder = fmt.write_meld(tmp_path / "meld")[0]
    (folder / "embedding.p").unlink()
    with pytest.raises(
        DataError,
        match=r"meld/dev\.pkl \(folder \S+/meld\): has train\.pkl but neither "
        r"embedding_and_mapping\.pt",
    ):
        load_dataset(folder / "dev.pkl")


def test_sniffed_pickle_with_only_classification_labels(tmp_path, fmt, quiet):
    def only_classes(d):
        for split in d.values():
            split.pop("regression_labels")

    path = fmt.write_mmsa(tmp_path, name="stuff.pkl", mutate=only_classes)[0]
    assert detect_format(path) == "mmsa"
    assert load_dataset(path).task == "classification"


def test_label_arguments_are_checked_before_loading(tmp_path):
    with pytest.raises(ConfigError, match=r"`task` must be one of \[None, 'regression', "):
        load_dataset(tmp_path / "absent", task="Regression")
    with pytest.raises(ConfigError, match=r"`label_key` must be a non-empty str or None; got ''"):
        load_dataset(tmp_path / "absent", format="mmsa", label_key="")


def test_unrecognised_pickle_message_lists_both_mmsa_label_keys(tmp_path):
    path = tmp_path / "stuff.pkl"
    path.write_bytes(pickle.dumps({"train": {"foo": np.zeros(2)}}))
    with pytest.raises(
        DataError,
        match=r"stuff\.pkl: cannot tell the format: not an MMSA pickle \(splits with "
        r"`regression_labels` or `classification_labels`\)",
    ):
        load_dataset(path)
