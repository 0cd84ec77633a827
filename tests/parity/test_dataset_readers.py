"""Dataset readers vs pandas / pyarrow: `llmstudio data preview --all --json` must give the same columns and
cells (text, or None for missing) as the reference readers on files with tricky content (quotes, embedded
newlines, CRLF, unicode, empty cells, a UTF-8 BOM). Also: the resolved config of `llmstudio config check` is
valid YAML for PyYAML (what H2O LLM Studio loads cfg.yaml with), with the same types."""
import csv
import json
import math

import pytest

from conftest import REPO, run_cli

pd = pytest.importorskip("pandas")
pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")
yaml = pytest.importorskip("yaml")

TRICKY_ROWS = [
    {"id": "1", "instruction": 'He said "hi", then left', "output": "line one\nline two", "note": ""},
    {"id": "2", "instruction": "  leading and trailing spaces  ", "output": "", "note": "NA"},
    {"id": "3", "instruction": "unicode: café, naïve, 日本語, emoji 😀, e\u0301", "output": "None", "note": "x"},
    {"id": "4", "instruction": "comma, separated, values", "output": '""quoted""', "note": ""},
    {"id": "5", "instruction": "tab\tand\r\nwindows newline", "output": "multi\n\nparagraph\n", "note": "last"},
]


def preview(llms_bin, path):
    proc = run_cli(llms_bin, "data", "preview", path, "--all", "--json")
    return json.loads(proc.stdout)


def pandas_cells(df):
    return [[None if (isinstance(v, float) and math.isnan(v)) else v for v in row] for row in df.itertuples(index=False)]


def write_csv(path, rows, *, quoting=csv.QUOTE_MINIMAL, lineterminator="\n", encoding="utf-8"):
    with open(path, "w", newline="", encoding=encoding) as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]), quoting=quoting, lineterminator=lineterminator)
        w.writeheader()
        w.writerows(rows)


@pytest.mark.parametrize(
    "variant",
    [
        dict(),
        dict(quoting=csv.QUOTE_ALL),
        dict(lineterminator="\r\n"),
        dict(encoding="utf-8-sig"),  # byte-order mark
    ],
    ids=["minimal", "quote_all", "crlf", "bom"],
)
def test_csv_matches_pandas(llms_bin, tmp_path, variant):
    path = tmp_path / "tricky.csv"
    write_csv(path, TRICKY_ROWS, **variant)
    ours = preview(llms_bin, path)
    # H2O reads CSV with pandas; we keep text such as "NA"/"None" as text and only empty cells as missing
    ref = pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[""])
    assert ours["columns"] == list(ref.columns)
    assert ours["num_rows"] == len(ref)
    assert ours["rows"] == pandas_cells(ref)


def test_csv_with_index_column_and_duplicate_names(llms_bin, tmp_path):
    path = tmp_path / "indexed.csv"
    path.write_text(",a,a,b\n0,x,y,z\n1,,\"q\"\"\",w\n", encoding="utf-8")
    ours = preview(llms_bin, path)
    ref = pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[""])
    assert ours["columns"] == list(ref.columns)  # "Unnamed: 0", "a", "a.1", "b"
    assert ours["rows"] == pandas_cells(ref)


# Headers whose renamed duplicates collide with names already in the header, and empty names (renamed last).
TRICKY_HEADERS = [
    ["a", "a", "a.1"], ["a", "a.1", "a"], ["a", "a", "a.1", "a.1"], ["a.2", "a", "a", "a"],
    ["a.1", "a.1", "a", "a", "a.1.1"], ["x.1", "x", "x", "x.1"], ["a.2", "a.1", "a", "a", "a"],
    ["", "b", "", "Unnamed: 0", "b"], ["Unnamed: 2", "x", ""], ["q"] * 50 + ["q.3", "q.60"],
]


@pytest.mark.parametrize("header", TRICKY_HEADERS, ids=lambda h: "|".join(h[:6]))
def test_csv_duplicate_header_names_match_pandas(llms_bin, tmp_path, header):
    path = tmp_path / "dup.csv"
    path.write_text(",".join(header) + "\n" + ",".join(str(i) for i in range(len(header))) + "\n", encoding="utf-8")
    ours = preview(llms_bin, path)
    ref = pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[""])
    assert ours["columns"] == list(ref.columns)
    assert ours["rows"] == pandas_cells(ref)


def test_jsonl_matches_pandas(llms_bin, tmp_path):
    rows = [
        {"q": 'quote " and \\ backslash', "n": 1, "f": 0.5, "b": True, "s": None},
        {"q": "newline\nand unicode 日本 😀", "n": 22, "f": 1e-05, "b": False, "s": "x"},
        {"q": "", "n": -3, "f": 123456789.0, "b": True, "s": "y"},
    ]
    path = tmp_path / "t.jsonl"
    path.write_text("\n".join(json.dumps(r, ensure_ascii=i % 2 == 0) for i, r in enumerate(rows)) + "\n", encoding="utf-8")
    ours = preview(llms_bin, path)
    ref = pd.read_json(path, lines=True, dtype=False)
    assert ours["columns"] == list(ref.columns)
    expected = [[None if v is None else str(v) for v in row] for row in ref.astype(object).where(ref.notna(), None).itertuples(index=False)]
    assert ours["rows"] == expected


def test_parquet_matches_pyarrow(llms_bin, tmp_path):
    table = pa.table(
        {
            "text": pa.array(["a \"q\", b", None, "日本語\n😀", ""], pa.string()),
            "large": pa.array(["x", "y", None, "z"], pa.large_string()),
            "cat": pa.array(["u", "v", "u", None]).dictionary_encode(),
            "i64": pa.array([1, -2, 3, 2**40], pa.int64()),
            "i_null": pa.array([1, None, 3, 4], pa.int32()),
            "f64": pa.array([0.5, 1e-05, 3.0, 1e16], pa.float64()),
            "flag": pa.array([True, False, None, True]),
        }
    )
    path = tmp_path / "t.parquet"
    pq.write_table(table, path)
    ours = preview(llms_bin, path)
    assert ours["columns"] == table.column_names
    ref = pq.read_table(path)

    def py_str(v):
        if v is None:
            return None
        if isinstance(v, float):
            return repr(v)
        return str(v)

    expected = [[py_str(ref.column(c)[r].as_py()) for c in range(ref.num_columns)] for r in range(ref.num_rows)]
    assert ours["rows"] == expected
    # the text columns equal what pandas (H2O's reader) gives for them
    df = pd.read_parquet(path)
    assert [r[0] for r in ours["rows"]] == [None if pd.isna(v) else v for v in df["text"]]


def test_example_dataset_matches_pandas(llms_bin):
    path = REPO / "examples" / "data" / "train.csv"
    ours = preview(llms_bin, path)
    ref = pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[""])
    assert ours["num_rows"] == len(ref) >= 180
    assert ours["rows"] == pandas_cells(ref)


def test_reader_errors_are_clear(llms_bin, tmp_path):
    bad = tmp_path / "latin1.csv"
    bad.write_bytes("a,b\n1,café\n".encode("latin-1"))
    proc = run_cli(llms_bin, "data", "preview", bad, check=False)
    assert proc.returncode != 0
    assert "not valid UTF-8" in proc.stderr and "line 2" in proc.stderr
    other = tmp_path / "data.xlsx"
    other.write_bytes(b"PK")
    proc = run_cli(llms_bin, "data", "preview", other, check=False)
    assert proc.returncode != 0 and ".parquet" in proc.stderr


def test_resolved_config_is_pyyaml_loadable(llms_bin):
    proc = run_cli(llms_bin, "config", "check", "-c", REPO / "examples" / "h2o_cfg_example.yaml",
                   "--set", "architecture.backbone_dtype=bfloat16", "--set", "training.weight_decay=1e-05")
    cfg = yaml.safe_load(proc.stdout)
    original = yaml.safe_load((REPO / "examples" / "h2o_cfg_example.yaml").read_text())
    assert cfg["training"]["weight_decay"] == 1e-05 and isinstance(cfg["training"]["weight_decay"], float)
    for section in ("dataset", "tokenizer", "training", "augmentation"):
        for key, value in cfg[section].items():
            if key in original[section]:
                assert value == original[section][key] or key == "weight_decay", (section, key)
    assert "logging.logger" in proc.stderr  # the warning about the ignored Neptune logger
