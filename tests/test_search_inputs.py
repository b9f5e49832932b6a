"""Bad input: one line, exit 2, no traceback, nothing written; passwords never leave masked."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from reports.redact import mask, password_of
from studies.cli import DEFAULTS, UsageError, parse_args
from studies.search import main
from studies.space import with_train_defaults
from studies.storage import StorageError, parse_storage, slugify

ROOT = Path(__file__).resolve().parent.parent
SECRET = "hunter2-Sw0rdfish"
UNREACHABLE = f"postgresql://wd:{SECRET}@127.0.0.1:1/wdbench"

BAD_FLAGS = {
    "unknown penalty": ["--penalties", "l3"],
    "empty penalty list": ["--penalties", ""],
    "penalty list of commas": ["--penalties", ",,"],
    "unknown problem": ["--problem", "mnist"],
    "unknown sampler": ["--sampler", "cmaes"],
    "unknown device": ["--device", "tpu"],
    "inverted lam range": ["--lam-range", "10", "0.1"],
    "zero lam range": ["--lam-range", "0", "1"],
    "negative lam range": ["--lam-range", "-1", "1"],
    "text lam range": ["--lam-range", "small", "1"],
    "lam range of one value": ["--lam-range", "1"],
    "zero n-trials": ["--n-trials", "0"],
    "fractional n-trials": ["--n-trials", "1.5"],
    "text n-trials": ["--n-trials", "many"],
    "zero seeds": ["--seeds", "0"],
    "negative batch": ["--batch", "-2"],
    "zero workers": ["--workers", "0"],
    "zero epochs": ["--epochs", "0"],
    "zero lr": ["--lr", "0"],
    "negative lr": ["--lr", "-0.1"],
    "text lr": ["--lr", "fast"],
    "nan lr": ["--lr", "nan"],
    "infinite lr": ["--lr", "inf"],
    "empty study name": ["--study-name", ""],
    "blank study name": ["--study-name", "   "],
    "unknown flag": ["--trials", "3"],
    "unknown storage scheme": ["--storage", "redis://localhost/0"],
    "storage neither URL nor journal": ["--storage", "studies.txt"],
    "sqlite in a missing directory": ["--storage", "sqlite:////nonexistent-dir/x/study.db"],
    "in-memory sqlite": ["--storage", "sqlite:///:memory:"],
    "huge grid": ["--grid-points", "2000000000"],
    "huge seeds": ["--seeds", "1000000000"],
    "huge n-trials with grid": ["--n-trials", "1" + "0" * 30, "--sampler", "grid"],
    "float n-trials": ["--n-trials", "1e30", "--sampler", "grid"],
    "more workers than cores allow": ["--workers", "10000"],
    "more workers than trials": ["--workers", "2", "--n-trials", "1"],
    "huge heartbeat interval": ["--heartbeat-interval", "1e10"],
    "huge stale-after": ["--stale-after", "1e10"],
    "study name longer than storages hold": ["--study-name", "x" * 513],
    "in-memory sqlite, short form": ["--storage", "sqlite://"],
    "malformed postgres URL": ["--storage", f"postgresql://wd:{SECRET}@:notaport/db"],
}


def assert_one_line_error(code: int, err: str, expected: int = 2) -> None:
    assert code == expected
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:"), err
    assert "Traceback" not in err


@pytest.mark.parametrize("extra", BAD_FLAGS.values(), ids=BAD_FLAGS.keys())
def test_bad_flag_exits_2_with_one_line_and_writes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], extra: list[str]
) -> None:
    out = tmp_path / "out"
    code = main(["--out", str(out), "--n-trials", "2", "--epochs", "2", *extra])
    captured = capsys.readouterr()
    assert_one_line_error(code, captured.err)
    assert SECRET not in captured.err + captured.out
    assert not out.exists()


def test_unreachable_database_exits_3_writing_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A database that does not answer may come back: exit 3 (rerun), not 2 (fix the input)."""
    out = tmp_path / "out"
    code = main(["--out", str(out), "--n-trials", "2", "--storage", UNREACHABLE])
    captured = capsys.readouterr()
    assert_one_line_error(code, captured.err, expected=3)
    assert SECRET not in captured.err + captured.out and "rerun" in captured.err
    assert not out.exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA is available here")
def test_cuda_without_cuda_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["--out", str(tmp_path / "out"), "--device", "cuda"])
    assert_one_line_error(code, capsys.readouterr().err)
    assert not (tmp_path / "out").exists()


def test_out_that_cannot_be_created(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    code = main(["--out", str(blocker / "runs"), "--n-trials", "2"])
    assert_one_line_error(code, capsys.readouterr().err)
    assert blocker.read_text() == ""


TOML_CASES = {
    "missing": None,
    "malformed": "n-trials = [1,\n",
    "unknown key": "n-trials = 3\ncolour = 'blue'\n",
    "wrong type": "n-trials = 'three'\n",
    "config inside config": "config = 'other.toml'\n",
    "empty penalties": "penalties = []\n",
    "NUL in out": 'out = "runs\\u0000x"\n',
    "NUL in storage": 'storage = "a\\u0000.log"\n',
}


@pytest.mark.parametrize("text", TOML_CASES.values(), ids=TOML_CASES.keys())
def test_bad_toml_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str | None
) -> None:
    config = tmp_path / "study.toml"
    if text is not None:
        config.write_text(text)
    code = main(["--config", str(config), "--out", str(tmp_path / "out")])
    assert_one_line_error(code, capsys.readouterr().err)
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
def test_non_utf8_toml_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "study.toml"
    config.write_bytes(b"seeds = 3 # caf\xe9\n")
    code = main(["--config", str(config), "--out", str(tmp_path / "out")])
    assert_one_line_error(code, capsys.readouterr().err)
    assert not (tmp_path / "out").exists()


def test_bad_input_from_the_command_line_has_no_traceback(tmp_path: Path) -> None:
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "studies.search",
            "--out",
            str(tmp_path / "out"),
            "--storage",
            UNREACHABLE,
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert_one_line_error(proc.returncode, proc.stderr, expected=3)
    assert SECRET not in proc.stderr + proc.stdout
    assert "***" in proc.stderr
    assert not (tmp_path / "out").exists()


def test_help_exits_0(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == 0
    assert "--lam-range" in capsys.readouterr().out


def test_defaults_are_the_lessons() -> None:
    s = parse_args([])
    assert s == DEFAULTS
    assert (s.lr, s.epochs, s.init_scale) == (None, None, None)  # TrainConfig's, filled in later
    resolved = with_train_defaults(s)
    assert (resolved.lr, resolved.epochs, resolved.init_scale) == (0.003, 100, 1.0)
    assert (s.n_trials, s.seeds, s.study_name) == (200, 5, "weight-decay")
    assert s.penalties == ("none", "l2", "l1", "elastic")
    assert s.lam_range == (1e-5, 1e2)


def test_penalty_list_is_stripped_and_deduplicated() -> None:
    assert parse_args(["--penalties", " l1, l2,l1 "]).penalties == ("l1", "l2")
    with pytest.raises(UsageError, match="penalties"):
        parse_args(["--penalties", "l1,lasso"])


@pytest.mark.parametrize("name", ["weight-decay", "a.b_c-1", "x" * 64])
def test_safe_names_are_their_own_slug(name: str) -> None:
    assert slugify(name) == name


@pytest.mark.parametrize(
    "name",
    [
        "..",
        ".",
        "../x",
        "a/b",
        "a\\b",
        "<script>",
        "Weight-Decay",
        "/etc/passwd",
        "~root",
        "x" * 300,
        "日本語",
        " ",
        ".hidden",
    ],
)
def test_unsafe_names_get_a_safe_distinct_slug(name: str) -> None:
    slug = slugify(name)
    assert slug not in ("", ".", "..") and not slug.startswith(".")
    assert all(c.isascii() and (c.isalnum() or c in "._-") for c in slug)
    assert slug != slugify(name + "!") and len(slug) <= 80


@pytest.mark.parametrize(
    "url",
    [
        f"postgresql://wd:{SECRET}@db.example:5432/x",
        f"postgresql+psycopg://wd:{SECRET}@db.example/x?sslmode=require",
        f"mysql://root:{SECRET}@localhost/x",
    ],
)
def test_mask_hides_the_password(url: str) -> None:
    assert password_of(url) == SECRET
    masked = mask(f"cannot reach {url}: refused")
    assert SECRET not in masked and "***" in masked
    assert SECRET not in parse_storage(url, Path("runs/x")).display


def test_mask_parses_the_url_and_never_searches_for_the_secret() -> None:
    url = "postgresql://wd:p%40ss%3Aword@h/db"
    assert password_of(url) == "p@ss:word"
    assert mask(f"cannot reach {url}") == "cannot reach postgresql://wd:***@h/db"
    # a one-character password: masked where it is, not wherever its letter appears
    command = "python -m studies.search --storage postgresql://u:e@h/db --study-name see"
    assert (
        mask(command)
        == "python -m studies.search --storage postgresql://u:***@h/db --study-name see"
    )


@pytest.mark.parametrize(
    ("url", "masked"),
    [
        ("postgresql://u@h/db?password=X1&sslmode=require", "postgresql://u@h/db?password=***&sslmode=require"),
        ("postgresql://h/db?sslpassword=X1&api_key=X1&authToken=X1&client_secret=X1&user=bob#f",
         "postgresql://h/db?sslpassword=***&api_key=***&authToken=***&client_secret=***&user=bob#f"),
        ("postgresql://u:X1@[::1/db", "postgresql://***"),
        ("postgresql://u:X1@h:port/db", "postgresql://***"),
        ("postgresql://u:X1/2@h/db", "postgresql://***"),
        ("sqlite:///runs/a.db", "sqlite:///runs/a.db"),
    ],
)  # fmt: skip
def test_mask_url_forms(url: str, masked: str) -> None:
    assert mask(url) == masked and "X1" not in mask(f"x {url} y")


def test_an_unencoded_at_in_the_password_is_refused_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(
        ["--out", str(tmp_path / "o"), "--storage", "postgresql://u:p@ss-Zq9@127.0.0.1:1/db"]
    )
    err = capsys.readouterr().err
    assert_one_line_error(code, err)
    assert "ss-Zq9" not in err and "%40" in err


def test_storage_forms() -> None:
    run_dir = Path("runs/x")
    assert parse_storage(None, run_dir).path == run_dir / "study.log"
    assert parse_storage("elsewhere/s.journal", run_dir).path == Path("elsewhere/s.journal")
    assert parse_storage("sqlite:///a.db", run_dir).url == "sqlite:///a.db"
    with pytest.raises(StorageError):
        parse_storage("ftp://x", run_dir)


#: Where a secret rides in a PostgreSQL URL: the userinfo, a query parameter, one character.
SECRET_FORMS = {
    "userinfo": lambda url: url.replace("postgres@", f"postgres:{SECRET}@", 1),
    "query": lambda url: f"{url}?password={SECRET}",
    "one character": lambda url: url.replace("postgres@", "postgres:e@", 1),
}


@pytest.mark.postgres
@pytest.mark.parametrize("form", list(SECRET_FORMS))
def test_password_never_reaches_an_output(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], postgres_url: str, form: str
) -> None:
    url = SECRET_FORMS[form](postgres_url)  # trust auth accepts any password
    out = tmp_path / "out"
    argv = [
        "--out", str(out), "--storage", url, "--penalties", "l2", "--n-trials", "2",
        "--seeds", "2", "--epochs", "3", "--grid-points", "2", "--study-name", "secret-e",
    ] + (["--no-report"] if form == "one character" else [])  # fmt: skip
    assert main(argv) == 0
    captured = capsys.readouterr()
    files = [p for p in out.rglob("*") if p.is_file()]
    assert any(p.name == "run.json" for p in files)
    info = json.loads((out / "secret-e" / "run.json").read_text())
    if form == "one character":  # masked where it is, not wherever its letter appears
        assert info["command"][:3] == ["python", "-m", "studies.search"]
        assert "secret-e" in info["command"] and "postgres:***@" in info["storage"]
        return
    assert any(p.suffix == ".html" for p in files) and any(p.suffix == ".parquet" for p in files)
    assert SECRET not in captured.out + captured.err
    for path in files:
        assert SECRET.encode() not in path.read_bytes(), path
    assert "***" in info["storage"]
