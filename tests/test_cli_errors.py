"""Every user mistake on the command lines ends as one `error: ...` line naming the problem and a non-zero
exit, with nothing left behind; --debug shows the traceback instead."""

import subprocess
import sys
from pathlib import Path

import pytest

from gse_explain.evaluate import main as evaluate
from gse_explain.figures.cli import main as figures

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def base(shared_data):
    return ["--dataset", "cifar10_npz", "--data-root", str(shared_data / "cifar10" / "cifar10_test_0-499.npz"),
            "--model", "resnet20", "--weights", str(shared_data / "models" / "resnet20_cifar10_gse.pt"),
            "--num-images", "2", "--batch-size", "2", "--option", "iterations=5", "--option", "search_steps=1",
            "--device", "cpu", "--no-progress"]


def _replace(argv, flag, value):
    argv = list(argv)
    index = argv.index(flag)
    if value is None:
        del argv[index : index + 2]
    else:
        argv[index + 1] = value
    return argv


EVALUATE_CASES = [
    ("batch size 0", lambda a: _replace(a, "--batch-size", "0"), "--batch-size must be an int ≥ 1"),
    ("num images 0", lambda a: _replace(a, "--num-images", "0"), "--num-images must be an int ≥ 1"),
    ("unknown attack", lambda a: a + ["--attack", "fgsm"], "--attack: unknown attack 'fgsm'; available:"),
    ("unknown option", lambda a: a + ["--option", "iters=3"], r"--option: unknown GSE option\(s\) \['iters'\]"),
    ("unknown preset", lambda a: a + ["--preset", "mnist"], "--preset 'mnist' is not a preset of gse"),
    ("repeated offsets", lambda a: a + ["--targeted", "--offsets", "1,1"], r"--offsets repeats \[1\]"),
    ("offsets untargeted", lambda a: a + ["--offsets", "1,2"], "--offsets only apply to targeted runs"),
    ("offset out of range", lambda a: a + ["--targeted", "--offsets", "1,10"], r"target offsets \[10\] are outside 1..9"),
    ("missing weights", lambda a: _replace(a, "--weights", "/nonexistent/w.pt"), "w.pt"),
    ("no weights", lambda a: _replace(a, "--weights", None), "has no built-in weights"),
    ("missing data", lambda a: _replace(a, "--data-root", "/nonexistent/x.npz"), "x.npz"),
    ("no data root", lambda a: _replace(a, "--data-root", None), "needs root=PATH"),
    ("unknown model", lambda a: _replace(a, "--model", "resnet7"), "--model: unknown model 'resnet7'"),
    ("wrong depth", lambda a: _replace(a, "--model", "resnet32"), "holds a CIFAR ResNet20, not ResNet32"),
    ("unknown model option", lambda a: a + ["--model-option", "width=2"], "width"),
    ("shard mismatch", lambda a: a + ["--shard", "0/2"], None),  # fine without a launcher: must succeed
]


@pytest.mark.parametrize("case", EVALUATE_CASES, ids=lambda c: c[0])
def test_evaluate_user_errors_are_one_line(case, base, tmp_path, one_thread):
    _, change, fragment = case
    output = tmp_path / "store"
    argv = change(base) + ["--output", str(output)]
    if fragment is None:
        assert evaluate(argv) == 0
        return
    with pytest.raises(SystemExit) as info:
        evaluate(argv)
    message = str(info.value.code)
    assert message.startswith("error: ") and "\n" not in message and "Traceback" not in message, message
    assert __import__("re").search(fragment, message), message
    assert not output.exists()  # nothing left behind that would block the corrected command


def test_output_that_is_a_file(base, tmp_path):
    output = tmp_path / "taken"
    output.write_text("mine")
    with pytest.raises(SystemExit, match="exists and is not a folder"):
        evaluate(base + ["--output", str(output)])
    assert output.read_text() == "mine"


@pytest.mark.parametrize("argv, fragment", [
    (["--shard", "2/2"], "--shard: shard i/n needs"),
    (["--seed", "one"], "invalid int value"),
    (["--option", "iterations"], "must look like NAME=VALUE"),
    (["--dataset", "mnist"], "invalid choice"),
])
def test_argparse_errors_exit_2(argv, fragment, capsys):
    with pytest.raises(SystemExit) as info:
        evaluate(argv)
    assert info.value.code == 2 and fragment in capsys.readouterr().err


def test_debug_shows_the_traceback(base, tmp_path):
    with pytest.raises(ValueError, match="RunConfig.batch_size"):
        evaluate(_replace(base, "--batch-size", "0") + ["--output", str(tmp_path / "s"), "--debug"])


@pytest.mark.parametrize("flag", ["--runs", "--out"])
def test_figures_runs_or_out_that_is_a_file(flag, tmp_path, capsys):
    taken = tmp_path / "taken"
    taken.write_text("mine")
    other = tmp_path / ("figs" if flag == "--runs" else "runs")
    assert figures(["demo", "--num-images", "1", flag, str(taken), "--out" if flag == "--runs" else "--runs", str(other)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "is a file, not a folder" in err and "Traceback" not in err
    assert taken.read_text() == "mine" and not other.exists()


def test_unwritable_folder_is_named(tmp_path, monkeypatch):
    from gse_explain.io import check_writable_folder

    monkeypatch.setattr("os.access", lambda path, mode: False)
    with pytest.raises(PermissionError, match=r"the runs folder \(--runs\) .* is not writable"):
        check_writable_folder(tmp_path / "new" / "runs", "the runs folder (--runs)")


def test_cli_process_prints_one_line_and_exits_1(tmp_path):
    done = subprocess.run([sys.executable, "-m", "gse_explain.evaluate", "--batch-size", "0", "--output", str(tmp_path / "s")],
                          capture_output=True, text=True, cwd=REPO, timeout=120)
    assert done.returncode == 1 and done.stderr.strip().splitlines() == [
        "error: --batch-size must be an int ≥ 1; got 0"], done.stderr
