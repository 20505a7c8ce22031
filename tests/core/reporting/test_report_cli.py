"""``python -m recsys_core report``: formats by extension, the baseline gate, exit codes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from recsys_core.cli import main
from recsys_core.data.demo_store import generate_demo_store

MODELS = "popularity,itemknn"


@pytest.fixture(scope="module")
def log_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small, seeded demo store written as a plain event-log CSV."""
    events, _ = generate_demo_store(n_users=300, n_items=150, n_events=20_000, seed=1)
    path = tmp_path_factory.mktemp("data") / "events.csv"
    events.to_csv(path, index=False)
    return path


@pytest.fixture(scope="module")
def report_json(log_csv: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("reports") / "report.json"
    assert main(["report", "--data", str(log_csv), "--out", str(out), "--models", MODELS]) == 0
    return out


def test_json_report_of_a_csv(report_json: Path) -> None:
    payload = json.loads(report_json.read_text())
    assert list(payload["models"]) == ["popularity", "itemknn"]
    assert payload["k"] == 10 and payload["report"]["format_version"] == 1
    assert [p.name for p in report_json.parent.iterdir()] == ["report.json"]  # no temp files


def test_html_and_pdf_reports(log_csv: Path, tmp_path: Path) -> None:
    for name, magic in (("r.html", b"<!DOCTYPE html>"), ("r.pdf", b"%PDF-")):
        out = tmp_path / name
        args = ["report", "--data", str(log_csv), "--out", str(out), "--models", MODELS]
        assert main([*args, "--k", "5"]) == 0
        assert out.read_bytes().startswith(magic)


def test_the_same_run_as_baseline_passes(
    log_csv: Path, report_json: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "again.json"
    args = ["report", "--data", str(log_csv), "--out", str(out), "--models", MODELS]
    assert main([*args, "--baseline", str(report_json)]) == 0
    assert "0 dropped by more than 5%" in capsys.readouterr().out


def test_a_better_baseline_fails_the_gate_after_writing(
    log_csv: Path, report_json: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    better = json.loads(report_json.read_text())
    better["models"]["itemknn"]["ndcg@10"] *= 1.2
    baseline = tmp_path / "better.json"
    baseline.write_text(json.dumps(better))
    out = tmp_path / "now.html"
    args = ["report", "--data", str(log_csv), "--out", str(out), "--models", MODELS]
    assert main([*args, "--baseline", str(baseline)]) == 3
    assert "DROP itemknn ndcg@10" in capsys.readouterr().out
    assert "REGRESSION: 1 of" in out.read_text()
    # a looser threshold lets the same change through
    assert main([*args, "--baseline", str(baseline), "--threshold", "0.25"]) == 0


def test_missing_baseline_exits_2(
    log_csv: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "r.json"
    args = ["report", "--data", str(log_csv), "--out", str(out)]
    assert main([*args, "--baseline", str(tmp_path / "nope.json")]) == 2
    assert "nope.json does not exist" in capsys.readouterr().err
    assert not out.exists()


def test_invalid_baseline_exits_2(log_csv: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("<html>")
    out = tmp_path / "r.json"
    assert main(["report", "--data", str(log_csv), "--out", str(out), "--baseline", str(bad)]) == 2


def test_unknown_extension_exits_2(
    log_csv: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["report", "--data", str(log_csv), "--out", str(tmp_path / "r.docx")]) == 2
    assert "FILE.html, FILE.pdf or FILE.json" in capsys.readouterr().err


def test_needs_exactly_one_input(tmp_path: Path) -> None:
    assert main(["report", "--out", str(tmp_path / "r.json")]) == 2


def test_from_a_saved_result_renders_every_format_without_evaluating(
    report_json: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    import recsys_core.evaluation as evaluation
    import recsys_core.reporting.data as report_data

    def no_evaluation(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("report --from must not evaluate again")

    monkeypatch.setattr(evaluation, "evaluate", no_evaluation)
    monkeypatch.setattr(report_data, "evaluate", no_evaluation)
    outs = [tmp_path / "again.html", tmp_path / "again.pdf", tmp_path / "again.json"]
    args = ["report", "--from", str(report_json)]
    for out in outs:
        args += ["--out", str(out)]
    assert main(args) == 0
    assert outs[0].read_bytes().startswith(b"<!DOCTYPE html>")
    assert outs[1].read_bytes().startswith(b"%PDF-")
    again = json.loads(outs[2].read_text())
    original = json.loads(report_json.read_text())
    assert again["models"] == original["models"]
    assert "not re-evaluated" in capsys.readouterr().err
    # an evaluate JSON renders too, saying what it cannot hold
    evaluate_json = {k: v for k, v in original.items() if k != "report"}
    plain = tmp_path / "eval.json"
    plain.write_text(json.dumps(evaluate_json))
    assert main(["report", "--from", str(plain), "--out", str(tmp_path / "e.html")]) == 0
    assert "evaluate --json" in (tmp_path / "e.html").read_text()


def test_from_needs_a_usable_file_and_no_second_input(
    report_json: Path, log_csv: Path, tmp_path: Path
) -> None:
    out = str(tmp_path / "r.html")
    assert main(["report", "--from", str(tmp_path / "missing.json"), "--out", out]) == 2
    both = ["report", "--from", str(report_json), "--data", str(log_csv), "--out", out]
    assert main(both) == 2
    assert not (tmp_path / "r.html").exists()


def test_one_evaluation_writes_several_formats(
    log_csv: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import recsys_core.reporting.data as report_data

    calls: list[object] = []
    real = report_data.evaluate

    def counted(*args: object, **kwargs: object) -> object:
        calls.append(args)
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(report_data, "evaluate", counted)
    html, js = tmp_path / "one.html", tmp_path / "one.json"
    args = ["report", "--data", str(log_csv), "--models", "popularity"]
    assert main([*args, "--out", str(html), "--out", str(js)]) == 0
    assert len(calls) == 1
    assert html.read_bytes().startswith(b"<!DOCTYPE html>")
    assert list(json.loads(js.read_text())["models"]) == ["popularity"]
