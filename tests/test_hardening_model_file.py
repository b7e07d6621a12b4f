"""Issue 12, model files: a model file is untrusted input.

Every hostile or damaged file below ends in one ``ModelFileError`` line (exit 2 from the CLI),
before anything is built from it: no internal error, no huge allocation, nothing accepted silently.
Models are made with the Python API on random rows (fast), then taken apart and reassembled.
"""

from __future__ import annotations

import copy
import io
import json
import struct
import zipfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from netml_core.errors import ModelFileError, NetmlError
from netml_core.model_file import MAX_MEMBER_BYTES, read_model
from netml_core.pcapwriter import write_pcap_columns
from netml_core.pipeline import Pipeline

DETECTORS = ("gmm", "ocsvm", "kde", "iforest", "pca", "knn")


def make_model(path: Path, detector: str, *, splitter: str = "meter", feature: str = "flowstats",
               params: dict | None = None) -> Path:
    """A fitted pipeline saved to ``path``: the front half's state set by hand, the scaler and
    detector fitted on 200 random rows of the feature's width."""
    pipe = Pipeline(flow_splitter=splitter, feature=feature, detector=detector, detector_params=params)
    if feature == "flowstats":
        pipe.feature.n_features_ = d = 38
    else:
        pipe.feature.dim_ = d = 6
    if splitter == "netml":
        pipe.flow_splitter.interval_ = 5.5
    X = np.random.default_rng(0).normal(size=(200, d))
    pipe.scaler.fit(X)
    pipe.detector.fit(pipe.scaler.transform(X))
    pipe.save(path)
    return path


def parts(path: Path) -> tuple[dict, dict, dict]:
    with zipfile.ZipFile(path) as zf:
        manifest = json.loads(zf.read("manifest.json"))
        with np.load(io.BytesIO(zf.read("arrays.npz"))) as npz:
            arrays = {k: npz[k] for k in npz.files}
        blobs = {n: zf.read(n) for n in zf.namelist() if n.startswith("blobs/")}
    return manifest, arrays, blobs


def assemble(path: Path, manifest, arrays: dict, blobs: dict | None = None, *, npz: bytes | None = None) -> Path:
    if npz is None:
        buf = io.BytesIO()
        np.savez(buf, **arrays)
        npz = buf.getvalue()
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("manifest.json", manifest if isinstance(manifest, bytes) else json.dumps(manifest))
        zf.writestr("arrays.npz", npz)
        for k, v in (blobs or {}).items():
            zf.writestr(k, v)
    return path


def refused(path: Path) -> str:
    """The one-line error ``Pipeline.load`` gives (any other exception fails the test)."""
    with pytest.raises(ModelFileError) as info:
        Pipeline.load(path)
    msg = str(info.value)
    assert "\n" not in msg and len(msg) < 400, msg
    return msg


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("models")
    out = {d: make_model(folder / f"{d}.netml", d) for d in DETECTORS}
    out["netml-iat"] = make_model(folder / "netml-iat.netml", "gmm", splitter="netml", feature="iat")
    return out


@pytest.fixture(scope="module")
def capture(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("cap") / "small.pcap"
    n = 40
    i = np.arange(n)
    write_pcap_columns(path, 1_700_000_000 * 10**9 + i * 10**7, 0x0A000001 + i % 4, np.full(n, 0x0A000064),
                       1000 + i % 4, np.full(n, 80), np.full(n, 6), np.full(n, 0x10), np.full(n, 64),
                       np.full(n, 60))
    return path


def mutate(src: Path, dst: Path, fn) -> Path:
    manifest, arrays, blobs = parts(src)
    out = fn(manifest, arrays)
    return assemble(dst, out if isinstance(out, bytes) else manifest, arrays, blobs)


def det_state(m: dict) -> dict:
    return m["components"]["detector"]["state"]


# -- the cases, one by one ---------------------------------------------------------------
MANIFEST_CASES = {
    "params 5": (lambda m, a: m["components"]["detector"].__setitem__("params", 5), "params must be a mapping"),
    "dim_ text": (lambda m, a: m["components"]["feature"]["state"].__setitem__("dim_", "71"), "dim_ must be an integer"),
    "dim_ -1": (lambda m, a: m["components"]["feature"]["state"].__setitem__("dim_", -1), "dim_ must be in 1.."),
    "dim_ 2**64": (lambda m, a: m["components"]["feature"]["state"].__setitem__("dim_", 2**64), "dim_ is out of range"),
    "dim_ 10**9": (lambda m, a: m["components"]["feature"]["state"].__setitem__("dim_", 10**9), "dim_ must be in 1.."),
    "interval_ text": (lambda m, a: m["components"]["flow_splitter"]["state"].__setitem__("interval_", "x"),
                       "interval_ must be a number"),
    "ndarray list": (lambda m, a: m["components"]["feature"]["state"].__setitem__("dim_", {"__ndarray__": [1, 2]}),
                     "__ndarray__ must be the only key"),
    "nested 2000": (lambda m, a: json.dumps({**m, "info": {"x": json.loads("[" * 900 + "]" * 900)}}).replace(
        '"x": [', '"x": ' + "[" * 1101, 1).replace("]}", "]" * 1101 + "}", 1).encode(), "nested"),
    "100000 digits": (lambda m, a: json.dumps(m).replace('"info": {', '"info": {"x": ' + "7" * 100_000 + ", ", 1).encode(),
                      "100000 digits"),
    "format_version 0": (lambda m, a: m.__setitem__("format_version", 0), "format_version 0"),
    "format_version -1": (lambda m, a: m.__setitem__("format_version", -1), "format_version -1"),
    "threshold NaN": (lambda m, a: det_state(m).__setitem__("threshold_", float("nan")), "threshold_ must be a finite"),
    "reader chunk_mib 10**9": (lambda m, a: m["components"]["reader"]["params"].__setitem__("chunk_mib", 10**9),
                               "chunk_mib' must be <= 256"),
    "scale_ 0-d": (lambda m, a: a.__setitem__("scaler.state.scale_", np.float64(2.0)), "scale_ must have 1 dimension"),
    "scale_ all inf": (lambda m, a: a.__setitem__("scaler.state.scale_", np.full(6, np.inf)), "scale_ contains NaN or inf"),
    "scale_ one short": (lambda m, a: a.__setitem__("scaler.state.scale_", np.ones(5)), "scale_ has shape (5,)"),
}


@pytest.mark.parametrize("case", list(MANIFEST_CASES))
def test_manifest_values_of_the_wrong_type_or_range_are_one_line(case, models, tmp_path):
    fn, fragment = MANIFEST_CASES[case]
    msg = refused(mutate(models["netml-iat"], tmp_path / "m.netml", fn))
    assert fragment in msg, msg


DETECTOR_CASES = {
    "ocsvm": {
        "dual_coef_ one short": (lambda m, a: a.__setitem__("detector.state.dual_coef_", a["detector.state.dual_coef_"][:-1]),
                                 "dual_coef_ has shape"),
        "no support vectors": (lambda m, a: (a.__setitem__("detector.state.support_vectors_", np.zeros((0, 38))),
                                             a.__setitem__("detector.state.dual_coef_", np.zeros(0))), "at least 1 row"),
        "gamma_ -1": (lambda m, a: det_state(m).__setitem__("gamma_", -1), "gamma_ must be > 0"),
    },
    "gmm": {
        "precisions of another width": (lambda m, a: a.__setitem__("detector.state.precisions_cholesky_", np.ones((4, 3, 3))),
                                        "precisions_cholesky_ has shape"),
        "a mixture of another width": (lambda m, a: (a.__setitem__("detector.state.means_", np.zeros((4, 37))),
                                                     a.__setitem__("detector.state.precisions_cholesky_",
                                                                   np.ones((4, 37, 37)))), "detector takes 37"),
    },
    "kde": {"bandwidth_ 0": (lambda m, a: det_state(m).__setitem__("bandwidth_", 0), "bandwidth_ must be > 0")},
    "iforest": {
        "node index outside": (lambda m, a: a.__setitem__("detector.state.left_", a["detector.state.left_"] + 10**6),
                               "index outside"),
        "max_depth_ 10**12": (lambda m, a: det_state(m).__setitem__("max_depth_", 10**12), "max_depth_ must be <="),
    },
    "pca": {"components of another width": (lambda m, a: a.__setitem__("detector.state.components_", np.zeros((3, 5))),
                                            "components_ has shape")},
    "knn": {"train_X_ 1-D": (lambda m, a: a.__setitem__("detector.state.train_X_", np.zeros(38)), "2-D array")},
}


@pytest.mark.parametrize("detector, case", [(d, c) for d, cases in DETECTOR_CASES.items() for c in cases])
def test_detector_state_shapes_and_ranges_are_checked(detector, case, models, tmp_path):
    fn, fragment = DETECTOR_CASES[detector][case]
    msg = refused(mutate(models[detector], tmp_path / "m.netml", fn))
    assert fragment in msg, msg


def test_every_detector_still_loads_and_scores(models):
    for name, path in models.items():
        pipe, _ = Pipeline.load(path)
        width = 38 if name in DETECTORS else 6
        assert np.isfinite(pipe.score(np.zeros((3, width)))).all(), name


# -- the zip and .npy layers -----------------------------------------------------------------------
def _patch_member(data: bytes, name: str, *, flags: int | None = None, size: int | None = None,
                  method: int | None = None) -> bytes:
    """Rewrite fields of ``name``'s local and central headers in a zip's bytes."""
    buf = bytearray(data)
    fname = name.encode()
    for sig, flag_at, method_at, size_at, name_len_at, name_at in ((b"PK\x03\x04", 6, 8, 22, 26, 30),
                                                                    (b"PK\x01\x02", 8, 10, 24, 28, 46)):
        pos = buf.find(sig)
        while pos >= 0:
            (n,) = struct.unpack_from("<H", buf, pos + name_len_at)
            if bytes(buf[pos + name_at:pos + name_at + n]) == fname:
                if flags is not None:
                    struct.pack_into("<H", buf, pos + flag_at, flags)
                if method is not None:
                    struct.pack_into("<H", buf, pos + method_at, method)
                if size is not None:
                    struct.pack_into("<I", buf, pos + size_at, size)
            pos = buf.find(sig, pos + 4)
    return bytes(buf)


def test_zip_damage_encryption_and_inflation_claims_are_one_line(models, tmp_path):
    data = models["gmm"].read_bytes()
    # deflate damage inside the manifest's compressed bytes
    with zipfile.ZipFile(models["gmm"]) as zf:
        info = zf.getinfo("manifest.json")
    start = info.header_offset + 30 + len(info.filename) + len(info.extra)
    broken = bytearray(data)
    for i in range(start + 5, start + 40):
        broken[i] ^= 0x5A
    (tmp_path / "deflate.netml").write_bytes(bytes(broken))
    assert "damaged" in refused(tmp_path / "deflate.netml")
    # the "encrypted" flag
    (tmp_path / "enc.netml").write_bytes(_patch_member(data, "arrays.npz", flags=1))
    assert "encrypted" in refused(tmp_path / "enc.netml")
    # a compression method netml never writes
    (tmp_path / "bz.netml").write_bytes(_patch_member(data, "arrays.npz", method=12))
    assert "compression method 12" in refused(tmp_path / "bz.netml")
    # a member whose header says it inflates to 5 GiB (zip64 not needed: 0xFFFFFFFF is ~4 GiB)
    (tmp_path / "big.netml").write_bytes(_patch_member(data, "arrays.npz", size=0xFFFF_FFF0))
    assert f"at most {MAX_MEMBER_BYTES}" in refused(tmp_path / "big.netml")
    # (a member that inflates past the size its header declares is cut there by zipfile, whose
    # reader never returns more than the declared size: bounding declared sizes is enough)


def _npy(header_shape: str, body: bytes) -> bytes:
    header = "{'descr': '<f8', 'fortran_order': False, 'shape': %s, }" % header_shape
    header = header.ljust(118) + "\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header.encode() + body


def test_npy_header_claiming_a_trillion_items_is_refused_without_allocating(models, tmp_path):
    m, a, b = parts(models["gmm"])
    inner = io.BytesIO()
    with zipfile.ZipFile(inner, "w") as zf:
        for k, v in a.items():
            if k == "scaler.state.scale_":
                continue
            buf = io.BytesIO()
            np.save(buf, v)
            zf.writestr(f"{k}.npy", buf.getvalue())
        zf.writestr("scaler.state.scale_.npy", _npy("(1000000, 1000000)", b"\0" * 64))
    msg = refused(assemble(tmp_path / "m.netml", m, a, b, npz=inner.getvalue()))
    assert "claims shape (1000000, 1000000)" in msg and "holds 64" in msg


def test_bad_model_through_the_cli_is_exit_2_and_one_line(models, capture, tmp_path, run_cli):
    bad = mutate(models["ocsvm"], tmp_path / "bad.netml", lambda m, a: det_state(m).__setitem__("gamma_", -1))
    res = run_cli("classify", "-m", bad, "-p", capture)
    assert res.exit_code == 2 and res.stdout == ""
    assert len(res.stderr.strip().splitlines()) == 1 and str(bad) in res.stderr and "gamma_" in res.stderr
    res = run_cli("classify", "-m", models["ocsvm"], "-p", capture, "--report-all", "--format", "csv")
    assert res.exit_code == 0, res.stderr


def test_ae_weights_that_do_not_fit_are_refused_before_torch_builds_a_network(tmp_path):
    path = make_model(tmp_path / "ae.netml", "ae", params={"epochs": 1})
    assert Pipeline.load(path)[0].names["detector"] == "ae"
    bad = mutate(path, tmp_path / "big.netml",
                 lambda m, a: m["components"]["detector"]["params"].__setitem__("hidden_dim", 1_000_000_000))
    assert "hidden_dim' must be <= 4096" in refused(bad)
    bad = mutate(path, tmp_path / "wide.netml", lambda m, a: det_state(m).__setitem__("in_dim_", 39))
    assert "do not fit the network" in refused(bad)


# -- anything else: a property --------------------------------------------------------------------
def _leaves(value, path=()):
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _leaves(v, path + (k,))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _leaves(v, path + (i,))
    else:
        yield path


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=6,
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_any_manifest_value_replaced_gives_a_model_or_one_line(models, tmp_path, data):
    """Replace one manifest value (or one array) by anything: load succeeds or is one NetmlError."""
    name = data.draw(st.sampled_from(sorted(models)))
    manifest, arrays, blobs = parts(models[name])
    manifest = copy.deepcopy(manifest)
    leaves = [p for p in _leaves(manifest) if p]
    where = data.draw(st.sampled_from(leaves))
    if where[-1] == "__ndarray__" and data.draw(st.booleans()):
        key = manifest
        for k in where:
            key = key[k]
        shape = data.draw(st.lists(st.integers(0, 4), max_size=3))
        arrays[key] = data.draw(st.sampled_from([np.zeros(shape), np.full(shape, np.nan), np.ones(shape, np.int8),
                                                 np.array(["x"] * int(np.prod(shape))).reshape(shape)]))
    else:
        target = manifest
        for k in where[:-1]:
            target = target[k]
        target[where[-1]] = data.draw(JSON_VALUES)
    path = assemble(tmp_path / "p.netml", json.dumps(manifest).encode(), arrays, blobs)
    try:
        pipe, _ = Pipeline.load(path)
        pipe.score(np.zeros((2, len(pipe.feature.feature_names()))))  # what a loaded model then does
    except NetmlError as exc:
        assert "\n" not in str(exc)


def test_read_model_alone_checks_the_schema(tmp_path, models):
    m, a, b = parts(models["gmm"])
    m["components"]["detector"]["kind"] = "feature"
    with pytest.raises(ModelFileError, match="says it is a 'feature'"):
        read_model(assemble(tmp_path / "k.netml", m, a, b), check_plugins=False)
