"""Model files: round trip without pickle, atomic writes, one-line errors, hostile files refused."""

from __future__ import annotations

import io
import json
import pickle
import zipfile
from pathlib import Path

import numpy as np
import pytest

from netml_core.errors import ModelFileError
from netml_core.model_file import (
    ARRAYS,
    FORMAT_VERSION,
    MANIFEST,
    ComponentRecord,
    read_model,
    write_model,
)


def _components():
    return {
        "flow_splitter": ComponentRecord(
            kind="flow_splitter", name="netml", params={"q_interval": 0.9, "timeouts": (600, 600)},
            state={"interval_": np.float64(5.776507735252384)}, plugin="core", distribution="netml",
            version="1.0.0"),
        "detector": ComponentRecord(
            kind="detector", name="native", params={"nu": 0.5},
            state={"threshold_": 1.25, "support_": np.arange(12, dtype=np.float32).reshape(3, 4),
                   "weights_": b"\x00\x01binary\xff", "nested_": {"n_": np.int64(7), "lst_": [1, 2.5, None]}},
            plugin="core", distribution="netml", version="1.0.0"),
    }


def test_round_trip_keeps_arrays_bytes_and_json(tmp_path):
    path = write_model(tmp_path / "out" / "model.dat", _components(), {"feature_names": ["a", "b"]})
    assert path.exists() and path.parent.name == "out"  # folder created, like the original's out/
    assert [p.name for p in path.parent.iterdir()] == ["model.dat"]  # no temp file left behind
    got = read_model(path, check_plugins=False)
    assert got.format_version == FORMAT_VERSION
    det = got.components["detector"].state
    assert det["threshold_"] == 1.25
    assert det["support_"].dtype == np.float32 and det["support_"].shape == (3, 4)
    np.testing.assert_array_equal(det["support_"], np.arange(12).reshape(3, 4))
    assert det["weights_"] == b"\x00\x01binary\xff"
    assert det["nested_"] == {"n_": 7, "lst_": [1, 2.5, None]}
    split = got.components["flow_splitter"]
    assert split.params == {"q_interval": 0.9, "timeouts": [600, 600]}
    assert split.state["interval_"] == 5.776507735252384  # float64 exact through JSON
    assert split.distribution == "netml" and split.version == "1.0.0"
    assert got.info == {"feature_names": ["a", "b"]}
    with zipfile.ZipFile(path) as zf:
        names = set(zf.namelist())
        manifest = json.loads(zf.read(MANIFEST))
    assert {MANIFEST, ARRAYS, "blobs/detector/state/weights_"} <= names
    assert manifest["format"] == "netml-model" and manifest["netml_version"]


def test_object_arrays_cannot_be_saved_and_old_file_survives(tmp_path):
    target = tmp_path / "model.dat"
    write_model(target, _components())
    before = target.read_bytes()
    bad = _components()
    bad["detector"].state["oops_"] = np.array([object()], dtype=object)
    with pytest.raises(ModelFileError, match="object arrays"):
        write_model(target, bad)
    assert target.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.dat"]


def _message(path) -> str:
    with pytest.raises(ModelFileError) as info:
        read_model(path)
    msg = str(info.value)
    assert "\n" not in msg
    return msg


def test_missing_empty_text_pickle_and_pcap_files_get_one_line(tmp_path):
    assert "does not exist" in _message(tmp_path / "nope.dat")
    (tmp_path / "empty.dat").write_bytes(b"")
    assert "is empty" in _message(tmp_path / "empty.dat")
    (tmp_path / "text.dat").write_text("hello\n")
    assert "not a netml model" in _message(tmp_path / "text.dat")
    (tmp_path / "orig.dat").write_bytes(pickle.dumps(({"a": 1}, {"score": 0.6}), protocol=4))
    msg = _message(tmp_path / "orig.dat")
    assert "pickle" in msg and "not loaded" in msg
    (tmp_path / "cap.pcap").write_bytes(b"\xd4\xc3\xb2\xa1" + b"\x00" * 40)
    assert "packet capture" in _message(tmp_path / "cap.pcap")


def test_truncated_model_gets_one_line(tmp_path):
    path = write_model(tmp_path / "m.dat", _components())
    data = path.read_bytes()
    for cut in (len(data) // 2, len(data) - 10, 30):
        (tmp_path / "cut.dat").write_bytes(data[:cut])
        assert "truncated" in _message(tmp_path / "cut.dat")


def _zip(path: Path, entries: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for k, v in entries.items():
            zf.writestr(k, v)
    return path


def _manifest(**over) -> bytes:
    m = {"format": "netml-model", "format_version": FORMAT_VERSION, "netml_version": "1.0.0",
         "components": {"detector": {"kind": "detector", "name": "x", "params": {},
                                     "state": {"w_": {"__ndarray__": "detector.state.w_"}}}}}
    m.update(over)
    return json.dumps(m).encode()


def test_foreign_zip_and_newer_format_are_refused(tmp_path):
    assert "without manifest.json" in _message(_zip(tmp_path / "a.zip", {"x.txt": b"1"}))
    assert "not JSON" in _message(_zip(tmp_path / "b.zip", {MANIFEST: b"{nope"}))
    assert "format is not" in _message(_zip(tmp_path / "c.zip", {MANIFEST: b'{"format": "other"}'}))
    msg = _message(_zip(tmp_path / "d.zip", {MANIFEST: _manifest(format_version=FORMAT_VERSION + 1,
                                                                 netml_version="9.0")}))
    assert f"format version {FORMAT_VERSION + 1}" in msg and "upgrade netml" in msg


class _Payload:
    """Unpickling this creates a file: proof that code ran."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def test_pickle_payload_inside_the_zip_is_refused_without_running(tmp_path):
    marker = tmp_path / "pwned"
    # 1) an object array inside arrays.npz (np.save pickles it)
    npz = io.BytesIO()
    np.savez(npz, **{"detector.state.w_": np.array([_Payload(marker)], dtype=object)})
    path = _zip(tmp_path / "evil1.dat", {MANIFEST: _manifest(), ARRAYS: npz.getvalue()})
    msg = _message(path)
    assert "pickled data" in msg and "refused" in msg
    # 2) arrays.npz replaced by a raw pickle stream
    path = _zip(tmp_path / "evil2.dat", {MANIFEST: _manifest(), ARRAYS: pickle.dumps(_Payload(marker))})
    assert "refused" in _message(path) or "damaged" in _message(path)
    # 3) a .npy member that is itself a pickle, within a genuine npz
    inner = io.BytesIO()
    with zipfile.ZipFile(inner, "w") as z:
        z.writestr("detector.state.w_.npy", pickle.dumps(_Payload(marker)))
    path = _zip(tmp_path / "evil3.dat", {MANIFEST: _manifest(), ARRAYS: inner.getvalue()})
    assert "refused" in _message(path)
    assert not marker.exists()
    # control: the payload really does run when unpickled, so the absence above means something
    pickle.loads(pickle.dumps(_Payload(marker)))
    assert marker.exists()


def test_missing_plugin_names_the_distribution(tmp_path):
    comps = _components()
    comps["detector"] = ComponentRecord(kind="detector", name="nosuchdetector", plugin="models_nosuch",
                                        distribution="netml-models-nosuch", version="1.2.0")
    path = write_model(tmp_path / "m.dat", comps)
    msg = _message(path)
    assert "'nosuchdetector'" in msg and "netml-models-nosuch 1.2.0" in msg
    assert "pip install netml-models-nosuch" in msg
