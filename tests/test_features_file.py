"""Features file: round trip from the demo capture, any file name, atomic writes, bad files."""

from __future__ import annotations

import io
import json
import os
import pickle
import zipfile
from pathlib import Path

import numpy as np
import pytest

from netml_core import features_file
from netml_core.errors import NetmlError
from netml_core.features_file import FeaturesFileError, read_features, write_features
from netml_core.labels import CsvLabels
from netml_core.packets import words_to_ip
from netml_core.readers.native import NativeReader
from netml_core.registry import get_registry
from netml_core.splitter import NetmlFlowSplitter

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
DEMO = SHARED / "data" / "netml-demo" / "demo.pcap"
CSV = SHARED / "data" / "netml-demo" / "demo.csv"


def _need(path: Path) -> Path:
    if not path.exists():
        pytest.fail(f"shared data missing: {path}", pytrace=False)
    return path


@pytest.fixture(scope="module")
def extracted():
    sp = NetmlFlowSplitter()
    flows = sp.fit_split(NativeReader().read(str(_need(DEMO))))
    y = CsvLabels(_need(CSV)).labels_for(flows)
    flows, y = flows.subset(y >= 0), y[y >= 0]
    feat = get_registry().create("feature", "samp_num", {})
    X = feat.fit_transform(flows)
    fitted = {"flow_splitter": {"name": "netml", "params": sp.get_params(), "state": sp.get_state()},
              "feature": {"name": "samp_num", "params": feat.get_params(), "state": feat.get_state()}}
    return X, y, flows, fitted


@pytest.mark.parametrize("name", ["demo.npz", "features.dat", "no_suffix"])
def test_round_trip_whatever_the_file_name(tmp_path, extracted, name):
    X, y, flows, fitted = extracted
    path = tmp_path / name
    write_features(path, X, y, flows, fitted)
    assert sorted(os.listdir(tmp_path)) == [name]  # no temp file left, no '.npz' appended
    data = read_features(path)
    assert data.features.shape == (88, 71) and np.array_equal(data.features, X)
    assert data.labels.dtype == np.int64 and data.labels.tolist() == y.tolist()
    assert words_to_ip(data.src)[:2] == ["192.168.10.5"] * 2 and words_to_ip(data.dst)[0] == "192.168.10.255"
    assert (data.sport[0], data.dport[0], data.proto[0]) == (137, 137, 17)
    assert np.array_equal(data.first_ts, flows.first_ts) and np.array_equal(data.last_ts, flows.last_ts)
    assert data.fitted["flow_splitter"]["state"]["interval_"] == pytest.approx(5.776507735252384, rel=1e-12)
    assert data.fitted["feature"]["state"] == {"dim_": 71, "sampling_rate_": 0.0012046575546264646}
    with zipfile.ZipFile(path) as z:  # a plain npz anyone can read without pickle
        assert {"features.npy", "labels.npy", "src.npy", "fitted.npy", "format.npy"} <= set(z.namelist())
    np.load(path, allow_pickle=False)["features"]


def test_labels_and_keys_are_optional(tmp_path):
    path = tmp_path / "x.npz"
    write_features(path, np.ones((3, 2)), fitted={"a": np.int64(1), "b": np.float32(0.5), "c": np.arange(2)})
    data = read_features(path)
    assert data.labels is None and data.src is None and len(data) == 3
    assert data.fitted == {"a": 1, "b": 0.5, "c": [0, 1]}


def test_a_failed_write_leaves_the_old_file_and_no_temp_file(tmp_path, monkeypatch, extracted):
    X, y, flows, fitted = extracted
    path = tmp_path / "features.npz"
    write_features(path, X, y, flows, fitted)
    before = path.read_bytes()

    def boom(fh, **arrays):
        fh.write(b"PK\x03\x04 half")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(features_file.np, "savez_compressed", boom)
    with pytest.raises(FeaturesFileError, match="No space left on device"):
        write_features(path, X * 2, y, flows, fitted)
    assert path.read_bytes() == before and os.listdir(tmp_path) == ["features.npz"]


def test_inconsistent_inputs_are_refused_before_writing(tmp_path, extracted):
    X, y, flows, _ = extracted
    with pytest.raises(FeaturesFileError, match="87 labels for 88 feature rows"):
        write_features(tmp_path / "f", X, y[:-1], flows)
    with pytest.raises(FeaturesFileError, match="2-D"):
        write_features(tmp_path / "f", X[0], None)
    assert os.listdir(tmp_path) == []


def _npz_bytes(**arrays):
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


class Evil:
    def __reduce__(self):
        return (os.system, ("echo pwned > /tmp/netml-pwned",))


@pytest.mark.parametrize("content, words", [
    (None, "cannot read features file"),
    (b"src,dst\n1,2\n", "not a netml features file (not an .npz archive)"),
    (b"\x93NUMPY" + b"\x00" * 100, "not an .npz archive"),
    (pickle.dumps({"features": [1, 2]}), "not an .npz archive"),
    ("truncated", "not a readable netml features file"),
    (_npz_bytes(x=np.ones(3)), "no 'features'/'format'"),
    (_npz_bytes(format=np.array("other/9"), features=np.ones((1, 1))), "unsupported features file format"),
    (_npz_bytes(format=np.array(features_file.FORMAT), features=np.array([Evil()], dtype=object)),
     "not a readable netml features file"),
    (_npz_bytes(format=np.array(features_file.FORMAT), features=np.ones((2, 2)), labels=np.ones(3)),
     "'labels' has 3 rows for 2 feature rows"),
    (_npz_bytes(format=np.array(features_file.FORMAT), features=np.ones((2, 2)), fitted=np.array("{x")),
     "not valid JSON"),
])
def test_bad_files_are_one_line_errors_and_never_unpickled(tmp_path, extracted, content, words):
    path = tmp_path / "in.npz"
    if content == "truncated":
        X, y, flows, fitted = extracted
        write_features(path, X, y, flows, fitted)
        path.write_bytes(path.read_bytes()[:1000])
    elif content is not None:
        path.write_bytes(content)
    with pytest.raises(FeaturesFileError) as exc:
        read_features(path)
    msg = str(exc.value)
    assert isinstance(exc.value, NetmlError) and words in msg and "\n" not in msg
    assert not os.path.exists("/tmp/netml-pwned")


def test_fitted_json_is_plain_text_in_the_archive(tmp_path, extracted):
    X, y, flows, fitted = extracted
    path = tmp_path / "f.npz"
    write_features(path, X, y, flows, fitted)
    with np.load(path, allow_pickle=False) as npz:
        assert npz["fitted"].dtype.kind == "U"
        assert json.loads(str(npz["fitted"]))["feature"]["name"] == "samp_num"
        assert str(npz["format"]) == "netml-features/1"


def test_a_python_user_extracts_saves_and_trains_in_two_steps(tmp_path):
    """``write_extracted`` then ``fitted_pipeline`` (what ``learn extract`` / ``learn train`` run):
    the rebuilt pipeline classifies a capture with the scores of the pipeline that extracted."""
    from netml_core.features_file import fitted_pipeline, write_extracted
    from netml_core.pipeline import Pipeline

    demo = str(_need(DEMO))
    first = Pipeline(detector="gmm")
    ex = first.fit_extract([demo], [CsvLabels(str(_need(CSV)))])
    write_extracted(tmp_path / "out" / "f.npz", first, ex)  # missing folder: created
    data = read_features(tmp_path / "out" / "f.npz")
    assert data.features.tobytes() == ex.X.tobytes() and np.array_equal(data.labels, ex.y)
    second = fitted_pipeline(tmp_path / "out" / "f.npz", data, detector="gmm")
    first.fit_detector(ex.X, fpr=0.01, random_state=1)
    second.fit_detector(data.features, fpr=0.01, random_state=1)
    a, b = first.classify(demo), second.classify(demo)
    assert len(a.scores) == 199 and a.scores.tobytes() == b.scores.tobytes()
    data.fitted.pop("feature")
    with pytest.raises(NetmlError, match="lacks the fitted extraction state"):
        fitted_pipeline("f.npz", data, detector="gmm")
