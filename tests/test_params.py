"""``--param`` parsing and the ``--help-param`` / ``--help-algorithm`` texts."""

from __future__ import annotations

import logging

import pytest

from netml_core.errors import ParameterError
from netml_core.params import format_algorithm_help, format_param_help, parse_param_option
from netml_core.registry import get_registry


@pytest.fixture(scope="module")
def reg():
    return get_registry()


@pytest.fixture(scope="module")
def ocsvm(reg):
    return reg.component_class("detector", "ocsvm")


@pytest.mark.parametrize(
    "text, expected",
    [
        ("{nu: 0.1, gamma: auto}", {"nu": 0.1, "gamma": "auto"}),
        ('{"nu": 0.1, "gamma": 0.02}', {"nu": 0.1, "gamma": 0.02}),
        ("nu: 0.25\nkernel: poly\ndegree: 2\n", {"nu": 0.25, "kernel": "poly", "degree": 2}),
        ("{tol: 1e-4}", {"tol": 1e-4}),  # YAML 1.1 would read 1e-4 as a string
        ("{ocsvm: {nu: 0.2}, kde: {bandwidth: 0.5}}", {"nu": 0.2}),
        ("{OCSVM: {nu: 0.2}}", {"nu": 0.2}),
        ("{ocsvm: null}", {}),
        ("", {}),
        (None, {}),
        ("{}", {}),
    ],
)
def test_text_forms(text, expected, ocsvm):
    parsed = parse_param_option(text, "ocsvm", ocsvm)
    assert parsed == expected
    assert all(type(parsed[k]) is type(v) for k, v in expected.items())


def test_file_forms(tmp_path, ocsvm, reg):
    yml = tmp_path / "params.yaml"
    yml.write_text("ocsvm:\n  nu: 0.3\niforest:\n  n_estimators: 20\n")
    assert parse_param_option(str(yml), "ocsvm", ocsvm) == {"nu": 0.3}
    iforest = reg.component_class("detector", "iforest")
    # the alias given on the command line finds the entry under the canonical name, and back
    assert parse_param_option(str(yml), "if", iforest, aliases=("iforest",)) == {"n_estimators": 20}
    js = tmp_path / "p.json"
    js.write_text('{"if": {"max_samples": 64}}')
    assert parse_param_option(str(js), "iforest", iforest, aliases=("if",)) == {"max_samples": 64}


def test_mapping_without_this_algorithm_means_defaults(tmp_path, reg, caplog):
    gmm = reg.component_class("detector", "gmm")
    with caplog.at_level(logging.WARNING, logger="netml.params"):
        assert parse_param_option("{ocsvm: {nu: 0.2}, kde: {bandwidth: 2}}", "gmm", gmm) == {}
    assert "no entry for 'gmm'" in caplog.text


@pytest.mark.parametrize(
    "text, pattern",
    [
        ("{nuu: 0.1}", r"^unknown parameter 'nuu' for algorithm 'ocsvm' in --param; known: kernel, nu, gamma,"),
        ("{ocsvm: {bandwidth: 1}}", r"^unknown parameter 'bandwidth' for algorithm 'ocsvm'"),
        ("{ocsv: {nu: 0.2}}", r"^unknown parameter 'ocsv' for algorithm 'ocsvm'"),  # a typo, not another algorithm
        ("{nu: 0.1", r"^--param is not valid YAML/JSON at line \d+, column \d+: "),
        ("[0.1, 0.2]", r"^--param must be a mapping such as"),
        ("nu=0.1", r"^--param must be a mapping such as .* got str 'nu=0.1'"),
        ("{ocsvm: 0.1}", r"^--param: the entry for 'ocsvm' must be a mapping"),
        ("{nu: 2}", r"parameter 'nu' must be <= 1.0, got 2"),
        ("{nu: high}", r"parameter 'nu' must be a number, got 'high'"),
        ("missing_params.yaml", r"^--param file 'missing_params.yaml' does not exist$"),
    ],
)
def test_errors_are_one_line_and_name_the_problem(text, pattern, ocsvm):
    with pytest.raises(ParameterError, match=pattern) as exc:
        parse_param_option(text, "ocsvm", ocsvm)
    assert "\n" not in str(exc.value)


def test_bad_file_content_names_the_file(tmp_path, ocsvm):
    bad = tmp_path / "bad.yml"
    bad.write_text("nu: [unclosed\n")
    with pytest.raises(ParameterError, match=r"^--param file '.*bad.yml' is not valid YAML/JSON"):
        parse_param_option(str(bad), "ocsvm", ocsvm)


def test_yaml_cannot_build_python_objects(ocsvm):
    with pytest.raises(ParameterError, match="not valid YAML/JSON"):
        parse_param_option("{nu: !!python/object/apply:os.system [echo pwned]}", "ocsvm", ocsvm)


def test_param_help_lists_every_parameter_with_default_and_doc(ocsvm, reg):
    text = format_param_help(ocsvm, name="ocsvm")
    lines = text.splitlines()
    assert lines[0] == f"ocsvm: {ocsvm.summary()}"
    assert lines[1].split() == ["PARAMETER", "DEFAULT", "DESCRIPTION"]
    rows = {ln.split()[0]: ln.split()[1] for ln in lines[2:-1]}
    assert rows == {p["name"]: str(p["default"]) for p in ocsvm.describe_params()} | {"shrinking": "true"}
    assert "upper bound on the fraction" in text
    pca = format_param_help(reg.component_class("detector", "pca"), name="pca")
    assert "n_components" in pca and "null for all" in pca and "weighted_distance" in pca


def test_algorithm_help_lists_installed_detectors(reg):
    text = format_algorithm_help(reg)
    lines = text.splitlines()
    assert lines[0].split()[:4] == ["ALGORITHM", "ALIASES", "SCALER", "SUMMARY"]
    by_name = {ln.split()[0]: ln for ln in lines[1:-1]}
    for name in ("ocsvm", "kde", "iforest", "ae", "gmm", "pca"):
        assert name in by_name
        assert f"models_{name} (netml-models-{name} 1.0.0)" in by_name[name]
        assert reg.get("detector", name).summary in by_name[name]
    assert by_name["iforest"].split()[1:3] == ["if", "none"]
    assert by_name["ocsvm"].split()[1:3] == ["-", "standard"]
