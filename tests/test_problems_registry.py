"""Problem registry: the built-in draws are pinned, specs parse and check, the synthetic knobs."""

from __future__ import annotations

import hashlib

import pytest
import torch

from wdbench import PROBLEMS, Problem, ProblemSpec, get_problem

# SHA-256 (first 32 hex digits) of the train, val and test tensors of each built-in problem, as
# drawn before the registry existed (``studies.seeds.build_problem``: float32, and the float64
# draw of the same builder). Existing studies stay valid only while these hold.
PINNED = {
    ("synthetic", 0): ("5d6b8d7b89a7b998b07166ae97375280", "768a299b2315781dd1a19a3ea03d2169"),
    ("synthetic", 7): ("be4d2d827b6c7e8ec828c0d4eb98b83f", "6b5e936cfef65973c154c91256f2d8d1"),
    ("synthetic", 1234567): (
        "a76bad1f166ad505ab0fc0e6fb0352a3",
        "3590ce4f8afb56a02e23f7f4a0256fcf",
    ),
    ("synthetic-sparse", 0): (
        "82d312279597160ea594933c8b466431",
        "e04e181fcfdc0102d0dff90f9f91f662",
    ),
    ("synthetic-sparse", 7): (
        "642651fc3a12f37f074ac80986b4bd71",
        "4b698b2670337448528ebb72db9e5072",
    ),
    ("synthetic-sparse", 1234567): (
        "e015d546eb94be4fec6344d0d24c22b7",
        "7159b590eaecfbd0d4a4cd00945b4a7c",
    ),
    ("diabetes", 0): ("8abc189495c610c45184a8c04fd911a6", "0106a89ea427311f6cfa39797e0dae47"),
    ("diabetes", 7): ("4c18a7ee0420a5f5c605d6efb14e0f7e", "ca79d6d5ccf842f1f136901a8235eac1"),
    ("diabetes", 1234567): ("a77469143cca497204483d516b7c5178", "108196fb184ee60158d6c66a400cb152"),
}
# A few values of the float64 draws, written exactly: y_train[0] and X_test[-1, -1].
PINNED_VALUES = {
    ("synthetic", 0): ("0x1.d1c4b9f244b32p-3", "0x1.562f63763be45p-1"),
    ("synthetic-sparse", 1234567): ("0x1.f3c06b7ddc882p-4", "-0x1.2511e374c164ep+0"),
    ("diabetes", 7): ("0x1.c4c550c770e69p-3", "-0x1.452db5ee6a48ap-4"),
}


def _digest(problem: Problem) -> str:
    h = hashlib.sha256()
    for split in ("train", "val", "test"):
        for t in problem.split(split):
            h.update(t.contiguous().numpy().tobytes())
    return h.hexdigest()[:32]


@pytest.mark.parametrize(("name", "seed"), sorted(PINNED))
def test_builtin_problems_draw_what_they_drew_before_the_registry(name: str, seed: int) -> None:
    f32, f64 = PINNED[name, seed]
    assert _digest(PROBLEMS[name].build(seed)) == f32
    assert _digest(PROBLEMS[name].build(seed, torch.float64)) == f64
    assert _digest(ProblemSpec.parse(name).build(seed, torch.float64)) == f64


@pytest.mark.parametrize(("name", "seed"), sorted(PINNED_VALUES))
def test_builtin_problems_pin_exact_values(name: str, seed: int) -> None:
    p = get_problem(name).build(seed, torch.float64)
    y0, x_last = PINNED_VALUES[name, seed]
    assert float(p.y_train[0]) == float.fromhex(y0)
    assert float(p.X_test[-1, -1]) == float.fromhex(x_last)


def test_classmethods_draw_the_registry_problems() -> None:
    assert _digest(Problem.synthetic(seed=7)) == PINNED["synthetic", 7][0]
    assert _digest(Problem.synthetic(sparsity=10, seed=7)) == PINNED["synthetic-sparse", 7][0]
    assert _digest(Problem.diabetes(seed=7)) == PINNED["diabetes", 7][0]


def test_registry_names_and_descriptions() -> None:
    assert tuple(PROBLEMS) == ("synthetic", "synthetic-sparse", "diabetes", "digits")
    for name, family in PROBLEMS.items():
        assert family.name == name
        assert family.description and "\n" not in family.description
        assert all(p.help for p in family.params)


@pytest.mark.parametrize("name", list(PROBLEMS))
def test_every_problem_builds_with_its_defaults_and_honours_dtype(name: str) -> None:
    """Conformance, generated from the registry: a new entry is tested automatically."""
    family = PROBLEMS[name]
    p = family.build(3, torch.float64)
    assert p.dtype == torch.float64
    assert p.n_train == family.defaults()["n_train"]
    assert p.X_val.shape[0] == family.defaults()["n_val"]
    q = family.build(3, torch.float64)
    assert torch.equal(p.X_train, q.X_train) and torch.equal(p.y_test, q.y_test)
    assert not torch.equal(p.y_train, family.build(4, torch.float64).y_train)


def test_spec_parses_typed_parameters_and_keeps_a_canonical_label() -> None:
    spec = ProblemSpec.parse(" synthetic: rho=0.5 , n_train=100 ")
    assert spec.name == "synthetic"
    assert spec.params == (("n_train", 100), ("rho", 0.5))
    assert isinstance(dict(spec.params)["n_train"], int)
    assert spec.label == "synthetic:n_train=100,rho=0.5"
    assert ProblemSpec.parse(spec.label) == spec
    resolved = spec.resolved()
    assert resolved["n_train"] == 100 and resolved["dim"] == 200 and resolved["sparsity"] is None
    assert ProblemSpec.parse("diabetes").label == "diabetes"
    assert ProblemSpec.parse("synthetic-sparse:sparsity=none").params == (("sparsity", None),)
    assert ProblemSpec.parse("synthetic:n_train=50,sparsity=none") == ProblemSpec.parse("synthetic")


def test_spec_from_a_toml_table_equals_the_parsed_one() -> None:
    import tomllib

    table = tomllib.loads("[problem]\nn_train = 100\nrho = 0.5\n")["problem"]
    assert ProblemSpec.of("synthetic", table) == ProblemSpec.parse("synthetic:n_train=100,rho=0.5")
    assert ProblemSpec.of("synthetic", {"noise": 1}).params == (("noise", 1.0),)


def test_spec_builds_the_parameterized_draw() -> None:
    p = ProblemSpec.parse("synthetic:n_train=20,dim=30,sparsity=3").build(1, torch.float64)
    assert (p.n_train, p.dim) == (20, 30)
    assert int((p.meta["true_w"] != 0).sum()) == 3
    direct = Problem.synthetic(n_train=20, dim=30, sparsity=3, seed=1, dtype=torch.float64)
    assert torch.equal(p.X_train, direct.X_train) and torch.equal(p.y_test, direct.y_test)


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("nonesuch", "problem must be one of synthetic, synthetic-sparse, diabetes"),
        ("synthetic:width=3", "problem synthetic has no parameter 'width'"),
        ("synthetic:n_train=1.5", "n_train must be an integer, got '1.5'"),
        ("synthetic:rho=high", "rho must be a number, got 'high'"),
        ("synthetic:rho=1", "rho must be in (-1, 1)"),
        ("synthetic:n_train=0", "n_train must be >= 1"),
        ("synthetic:dim=5,sparsity=6", "sparsity must be in [0, 5]"),
        ("synthetic:n_train", "expected key=value"),
        ("synthetic:dim=3,dim=4", "dim given twice"),
        ("diabetes:n_train=400", "must leave test rows"),
        ("diabetes:sparsity=3", "problem diabetes has no parameter 'sparsity'"),
        ("diabetes:degree=none", "degree must be an integer"),
    ],
)
def test_bad_specs_are_refused_in_one_line(text: str, needle: str) -> None:
    with pytest.raises(ValueError) as info:
        ProblemSpec.parse(text)
    assert needle in str(info.value) and "\n" not in str(info.value)


@pytest.mark.parametrize("value", [True, "x", [1]])
def test_toml_values_of_the_wrong_type_are_refused(value: object) -> None:
    with pytest.raises(ValueError, match="n_train must be an integer"):
        ProblemSpec.of("synthetic", {"n_train": value})


@pytest.mark.parametrize("rho", [0.5, 0.9, -0.6])
def test_rho_gives_toeplitz_correlation_with_unit_variance(rho: float) -> None:
    p = Problem.synthetic(n_test=20000, dim=8, rho=rho, seed=2, dtype=torch.float64)
    corr = torch.corrcoef(p.X_test.T)
    for lag in (1, 2, 3):
        observed = torch.diagonal(corr, offset=lag)
        assert torch.allclose(observed, torch.full_like(observed, rho**lag), atol=0.03)
    assert torch.allclose(p.X_test.var(0), torch.ones(8, dtype=torch.float64), atol=0.05)


def test_rho_keeps_the_first_feature_and_the_truth_of_the_uncorrelated_draw() -> None:
    a = Problem.synthetic(seed=4, rho=0.0, dtype=torch.float64)
    b = Problem.synthetic(seed=4, rho=0.7, dtype=torch.float64)
    assert torch.equal(a.X_train[:, 0], b.X_train[:, 0])
    assert not torch.equal(a.X_train[:, 1], b.X_train[:, 1])
    eps = b.y_test - (b.X_test @ b.meta["true_w"] + b.meta["true_b"])
    assert abs(float(eps.std()) - 0.01) < 0.001
