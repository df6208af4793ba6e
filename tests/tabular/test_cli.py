"""`gankit impute` and `gankit synth` end to end on small CSV files."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from gankit.cli import main
from gankit.errors import DataError
from gankit.tabular.files import read_csv


def write_tables(tmp_path):
    rng = np.random.default_rng(0)
    n = 60
    a = rng.normal(size=n)
    df = pd.DataFrame({"a": a, "b": 3 * a + rng.normal(0, 0.1, n), "g": rng.choice(["x", "y"], n)})
    df.to_csv(tmp_path / "train.csv", index=False)
    rows = df.head(5).copy()
    rows.loc[[0, 2], "b"] = np.nan
    rows.loc[1, "g"] = np.nan
    rows.to_csv(tmp_path / "rows.csv", index=False)
    return df, rows


def test_impute_fit_save_then_model(tmp_path, capsys):
    df, _ = write_tables(tmp_path)
    code = main(
        [
            "impute",
            "--fit",
            str(tmp_path / "train.csv"),
            "--in",
            str(tmp_path / "rows.csv"),
            "--out",
            str(tmp_path / "filled.csv"),
            "--save",
            str(tmp_path / "model"),
            "--steps",
            "50",
        ]
    )
    assert code == 0
    filled = pd.read_csv(tmp_path / "filled.csv")
    assert filled.notna().all().all() and filled["g"].isin(["x", "y"]).all()
    assert abs(filled.loc[0, "b"] - df.loc[0, "b"]) < 0.5  # b ~ 3a: recovered from a
    code = main(
        [
            "impute",
            "--model",
            str(tmp_path / "model"),
            "--in",
            str(tmp_path / "rows.csv"),
            "--out",
            str(tmp_path / "again.csv"),
        ]
    )
    assert code == 0
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "again.csv"), filled)


def test_impute_errors_exit_2(tmp_path, capsys):
    code = main(["impute", "--in", str(tmp_path / "nope.csv"), "--out", str(tmp_path / "o.csv")])
    assert code == 2
    assert "nope.csv: no such file" in capsys.readouterr().err


def test_synth_fit_and_sample(tmp_path):
    write_tables(tmp_path)
    model = tmp_path / "synth"
    assert (
        main(
            [
                "synth",
                "fit",
                str(tmp_path / "train.csv"),
                "--discrete",
                "g",
                "--out",
                str(model),
                "--steps",
                "3",
            ]
        )
        == 0
    )
    assert (
        main(
            [
                "synth",
                "sample",
                str(model),
                "--n",
                "12",
                "--out",
                str(tmp_path / "s.csv"),
                "--condition",
                "g=y",
            ]
        )
        == 0
    )
    out = pd.read_csv(tmp_path / "s.csv")
    assert len(out) == 12 and (out["g"] == "y").all() and list(out.columns) == ["a", "b", "g"]


def test_impute_semicolon_csv_is_detected_and_written_back_alike(tmp_path, capsys):
    df, rows = write_tables(tmp_path)
    df.to_csv(tmp_path / "train.csv", index=False, sep=";")
    rows.to_csv(tmp_path / "rows.csv", index=False, sep=";")
    args = ["impute", "--fit", str(tmp_path / "train.csv"), "--in", str(tmp_path / "rows.csv")]
    code = main([*args, "--out", str(tmp_path / "filled.csv"), "--steps", "20"])
    assert code == 0
    report = json.loads(capsys.readouterr().out)
    assert report["missing_filled"] == 3
    filled = pd.read_csv(tmp_path / "filled.csv", sep=";")
    assert list(filled.columns) == ["a", "b", "g"] and filled.notna().all().all()


@pytest.mark.parametrize(("sep", "name"), [("\t", "tab"), ("|", "'|'")])
def test_read_csv_detects_tab_and_pipe(tmp_path, sep, name):
    df, _ = write_tables(tmp_path)
    df.to_csv(tmp_path / "t.csv", index=False, sep=sep)
    frame = read_csv(tmp_path / "t.csv")
    assert list(frame.columns) == ["a", "b", "g"] and frame.attrs["delimiter"] == sep


def test_undecidable_or_wrong_delimiter_is_refused_with_the_fix(tmp_path, capsys):
    (tmp_path / "mixed.csv").write_text("a;b,c\n1;2\n3,4\n5\n")
    with pytest.raises(DataError, match=r"cannot tell the column delimiter.*--delimiter"):
        read_csv(tmp_path / "mixed.csv")
    df, _ = write_tables(tmp_path)
    df.to_csv(tmp_path / "semi.csv", index=False, sep=";")
    with pytest.raises(DataError, match=r"single column named 'a;b;g'.*--delimiter ';'"):
        read_csv(tmp_path / "semi.csv", delimiter=",")
    out = tmp_path / "o.csv"
    code = main(
        ["impute", "--in", str(tmp_path / "semi.csv"), "--out", str(out), "--delimiter", ","]
    )
    assert code == 2 and "--delimiter ';'" in capsys.readouterr().err and not out.exists()


def test_id_columns_on_the_cli(tmp_path, capsys):
    df, _ = write_tables(tmp_path)
    df.insert(0, "name", [f"patient-{i:03d}" for i in range(len(df))])
    df.to_csv(tmp_path / "train.csv", index=False)
    base = ["impute", "--in", str(tmp_path / "train.csv"), "--out", str(tmp_path / "f.csv")]
    assert main([*base, "--steps", "5"]) == 2
    assert "'name' looks like an identifier" in capsys.readouterr().err
    holed = df.copy()
    holed.loc[[0, 3], "b"] = np.nan
    holed.to_csv(tmp_path / "holed.csv", index=False)
    base[2] = str(tmp_path / "holed.csv")
    assert main([*base, "--steps", "5", "--id-columns", "name"]) == 0
    filled = pd.read_csv(tmp_path / "f.csv")
    assert list(filled["name"]) == list(df["name"]) and filled["b"].notna().all()
    model = tmp_path / "synth"
    fit = ["synth", "fit", str(tmp_path / "train.csv"), "--discrete", "g", "--out", str(model)]
    assert main([*fit, "--steps", "2", "--id-columns", "name"]) == 0
    capsys.readouterr()
    assert main(["synth", "sample", str(model), "--n", "80", "--out", str(tmp_path / "s.csv")]) == 0
    out = pd.read_csv(tmp_path / "s.csv")
    assert list(out.columns) == ["name", "a", "b", "g"]
    assert not set(out["name"]) & set(df["name"])
