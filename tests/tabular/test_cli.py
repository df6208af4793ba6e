"""`gankit impute` and `gankit synth` end to end on small CSV files."""

from __future__ import annotations

import numpy as np
import pandas as pd

from gankit.cli import main


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
