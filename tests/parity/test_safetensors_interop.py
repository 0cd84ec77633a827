"""Safetensors interop with the reference Python `safetensors` library (and huggingface_hub sharding).

Files written by Python are read by our reader with identical bytes, dtypes, shapes and metadata; files
written by our writer (single and sharded) load in Python with identical values and metadata; malformed
files are rejected by both. Drives tests/tools/llms_safetensors_tool, found via LLMS_SAFETENSORS_TOOL or
$LLMS_BUILD_DIR (default "build")/tests/tools/llms_safetensors_tool.
"""
import json
import os
import struct
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors import safe_open
from safetensors.numpy import save_file as np_save_file
from safetensors.torch import load_file, save_file

REPO = Path(__file__).resolve().parents[2]


def tool_path() -> Path:
    if os.environ.get("LLMS_SAFETENSORS_TOOL"):
        return Path(os.environ["LLMS_SAFETENSORS_TOOL"])
    build = Path(os.environ.get("LLMS_BUILD_DIR", "build"))
    if not build.is_absolute():
        build = REPO / build
    return build / "tests" / "tools" / "llms_safetensors_tool"


TOOL = tool_path()


@pytest.fixture(scope="module", autouse=True)
def require_tool():
    if not TOOL.exists():
        pytest.fail(f"{TOOL} not built: build the llms_safetensors_tool target (or set LLMS_BUILD_DIR / "
                    "LLMS_SAFETENSORS_TOOL)")


def run_tool(*args, check=True):
    p = subprocess.run([str(TOOL), *map(str, args)], capture_output=True, text=True, timeout=120)
    if check and p.returncode != 0:
        raise AssertionError(f"llms_safetensors_tool {' '.join(map(str, args))} failed: {p.stderr}")
    return p


def dump(path):
    return json.loads(run_tool("dump", path).stdout)


ST_NAME = {
    torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16", torch.float64: "F64",
    torch.int8: "I8", torch.int16: "I16", torch.int32: "I32", torch.int64: "I64", torch.uint8: "U8",
    torch.bool: "BOOL", torch.float8_e4m3fn: "F8_E4M3", torch.float8_e5m2: "F8_E5M2",
    torch.uint16: "U16", torch.uint32: "U32", torch.uint64: "U64",
}


def raw_bytes(t: torch.Tensor) -> bytes:
    t = t.contiguous()
    if t.numel() == 0:
        return b""
    return t.view(-1).view(torch.uint8).numpy().tobytes() if t.dtype != torch.bool else t.numpy().tobytes()


def sample(dtype, shape, seed):
    g = torch.Generator().manual_seed(seed)
    if dtype == torch.bool:
        return torch.rand(shape, generator=g) > 0.5
    if dtype.is_floating_point:
        x = torch.randn(shape, generator=g, dtype=torch.float64) * 3
        return x.to(dtype)
    info_hi = {torch.uint8: 255, torch.uint16: 65535, torch.uint32: 2**31, torch.uint64: 2**62}.get(dtype)
    if info_hi is not None:
        return torch.randint(0, info_hi, shape, generator=g, dtype=torch.int64).to(dtype)
    hi = torch.iinfo(dtype).max
    return torch.randint(-min(hi, 2**62), min(hi, 2**62), shape, generator=g, dtype=torch.int64).to(dtype)


def python_state_dict():
    sd = {}
    for i, (dtype, name) in enumerate(ST_NAME.items()):
        sd[f"t.{name}"] = sample(dtype, (3, 5), i)
        sd[f"s.{name}"] = sample(dtype, (), 100 + i)  # scalar, shape []
        sd[f"e.{name}"] = torch.empty((0, 7), dtype=dtype)  # empty
    sd["odd.F16"] = sample(torch.float16, (7,), 7)  # odd byte counts mixed with larger dtypes
    sd["big.F32"] = sample(torch.float32, (33, 65), 8)
    # Special float values survive bit-exactly.
    sd["special.F32"] = torch.tensor([float("nan"), float("inf"), -float("inf"), -0.0, 1e-45])
    return sd


def assert_dump_matches(d, sd, metadata):
    assert set(d["tensors"]) == set(sd)
    for name, t in sd.items():
        got = d["tensors"][name]
        assert got["dtype"] == ST_NAME[t.dtype], name
        assert got["shape"] == list(t.shape), name
        assert bytes.fromhex(got["hex"]) == raw_bytes(t), name
    for k, v in (metadata or {}).items():
        assert d["metadata"][k] == v


def assert_same_tensors(a: dict, b: dict):
    assert set(a) == set(b)
    for name in a:
        assert a[name].dtype == b[name].dtype, name
        assert a[name].shape == b[name].shape, name
        assert raw_bytes(a[name]) == raw_bytes(b[name]), name


# ---------------------------------------------------------------------------------------------------
# Python writes, we read


def test_we_read_python_files_all_dtypes(tmp_path):
    sd = python_state_dict()
    md = {"format": "pt", "note": "héllo \"quoted\"", "empty": ""}
    save_file(sd, tmp_path / "a.safetensors", metadata=md)
    d = dump(tmp_path / "a.safetensors")
    assert d["sharded"] is False
    assert d["metadata"] == md
    assert_dump_matches(d, sd, md)
    # Python aligns the data: every non-empty tensor must be a zero-copy view of our mapping.
    for name, t in d["tensors"].items():
        assert t["zero_copy"], name


def test_we_read_numpy_written_files(tmp_path):
    arrays = {
        "f32": np.linspace(-1, 1, 12, dtype=np.float32).reshape(3, 4),
        "f64": np.array(3.5),
        "i8": np.arange(-5, 5, dtype=np.int8),
        "u8": np.arange(250, 256, dtype=np.uint8),
        "b": np.array([[True, False], [False, True]]),
        "e": np.zeros((2, 0, 3), dtype=np.int32),
    }
    np_save_file(arrays, tmp_path / "n.safetensors")
    d = dump(tmp_path / "n.safetensors")
    for name, a in arrays.items():
        got = d["tensors"][name]
        assert got["shape"] == list(a.shape)
        assert bytes.fromhex(got["hex"]) == a.tobytes()
    assert d["metadata"] == {}


def test_we_read_empty_file_without_tensors(tmp_path):
    save_file({}, tmp_path / "empty.safetensors")
    d = dump(tmp_path / "empty.safetensors")
    assert d["tensors"] == {}


def test_we_read_huggingface_hub_sharded_checkpoints(tmp_path):
    huggingface_hub = pytest.importorskip("huggingface_hub")
    sd = {f"layers.{i}.weight": sample(torch.bfloat16, (64, 64), i) for i in range(6)}
    sd["embed.weight"] = sample(torch.float32, (100, 16), 99)
    huggingface_hub.save_torch_state_dict(sd, tmp_path, max_shard_size=20_000, metadata={"format": "pt"})
    index = json.loads((tmp_path / "model.safetensors.index.json").read_text())
    assert len(set(index["weight_map"].values())) > 1, "reference should have produced several shards"
    d = dump(tmp_path)
    assert d["sharded"] is True
    assert int(d["metadata"]["total_size"]) == index["metadata"]["total_size"]
    assert_dump_matches(d, sd, {})


def test_we_read_handmade_sharded_index(tmp_path):
    a = {"x": sample(torch.float16, (4, 4), 1)}
    b = {"y": sample(torch.int64, (3,), 2), "z": sample(torch.bool, (2, 2), 3)}
    save_file(a, tmp_path / "part-a.safetensors")
    save_file(b, tmp_path / "part-b.safetensors")
    (tmp_path / "model.safetensors.index.json").write_text(json.dumps({
        "metadata": {"total_size": 32 + 24 + 4},
        "weight_map": {"x": "part-a.safetensors", "y": "part-b.safetensors", "z": "part-b.safetensors"}}))
    d = dump(tmp_path / "model.safetensors.index.json")
    assert_dump_matches(d, {**a, **b}, {})


# ---------------------------------------------------------------------------------------------------
# We write, Python reads


def test_python_reads_our_files(tmp_path):
    sd = python_state_dict()
    save_file(sd, tmp_path / "src.safetensors", metadata={"format": "pt"})
    run_tool("copy", tmp_path / "src.safetensors", tmp_path / "ours.safetensors", "extra=value with spaces",
             "unicode=ünï")
    back = load_file(tmp_path / "ours.safetensors")
    assert_same_tensors(back, sd)
    with safe_open(tmp_path / "ours.safetensors", framework="pt") as f:
        assert f.metadata() == {"format": "pt", "extra": "value with spaces", "unicode": "ünï"}
        assert set(f.keys()) == set(sd)
    # The numpy frontend reads what it can represent too.
    # (np_load_file would fail on bf16/f8, which numpy lacks; read the numpy-representable ones one by one.)
    np_view = {k: v for k, v in sd.items() if v.dtype in (torch.float32, torch.int64, torch.uint8, torch.bool,
                                                         torch.float16, torch.int8)}
    with safe_open(tmp_path / "ours.safetensors", framework="np") as f:
        for k, v in np_view.items():
            assert f.get_tensor(k).tobytes() == raw_bytes(v), k


def test_our_layout_follows_the_reference(tmp_path):
    sd = {"a": sample(torch.float16, (3,), 0), "b": sample(torch.float64, (2,), 1), "c": sample(torch.uint8, (5,), 2)}
    save_file(sd, tmp_path / "src.safetensors")
    run_tool("copy", tmp_path / "src.safetensors", tmp_path / "ours.safetensors")
    raw = (tmp_path / "ours.safetensors").read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    assert (8 + n) % 8 == 0, "data section must start at a multiple of 8"
    header = raw[8:8 + n]
    assert header.rstrip(b" ") == header.rstrip(), "padding must be spaces"
    h = json.loads(header)
    # Every tensor aligned to its element size within the data section, covering it exactly.
    sizes = {"F64": 8, "F16": 2, "U8": 1}
    ends = sorted(v["data_offsets"] for k, v in h.items() if k != "__metadata__")
    assert ends[0][0] == 0 and ends[-1][1] == len(raw) - 8 - n
    for k, v in h.items():
        assert v["data_offsets"][0] % sizes[v["dtype"]] == 0, k


def test_python_reads_our_shards(tmp_path):
    sd = {f"layers.{i}.w": sample(torch.float32, (16, 16), i) for i in range(5)}  # 1024 bytes each
    sd["scalar"] = sample(torch.int64, (), 9)
    sd["empty"] = torch.empty((0,), dtype=torch.bfloat16)
    save_file(sd, tmp_path / "src.safetensors", metadata={"format": "pt"})
    out = tmp_path / "sharded"
    res = json.loads(run_tool("shard", tmp_path / "src.safetensors", out, 2100).stdout)
    n = len(res["files"])
    assert n >= 3
    assert res["files"] == [f"model-{i:05d}-of-{n:05d}.safetensors" for i in range(1, n + 1)]
    index = json.loads((out / "model.safetensors.index.json").read_text())
    assert index["metadata"]["total_size"] == sum(t.numel() * t.element_size() for t in sd.values())
    assert set(index["weight_map"]) == set(sd)
    loaded = {}
    for shard in sorted(set(index["weight_map"].values())):
        part = load_file(out / shard)
        with safe_open(out / shard, framework="pt") as f:
            assert f.metadata()["format"] == "pt"
        # Each shard's data holds at most 2100 bytes unless it is a single oversized tensor.
        size = sum(t.numel() * t.element_size() for t in part.values())
        assert size <= 2100 or len(part) == 1
        for k in part:
            assert index["weight_map"][k] == shard
        loaded.update(part)
    assert_same_tensors(loaded, sd)
    # And our reader loads the folder back.
    assert_dump_matches(dump(out), sd, {})


# ---------------------------------------------------------------------------------------------------
# Malformed files: rejected by both the reference and us


def st_bytes(header, data=b""):
    h = header.encode() if isinstance(header, str) else header
    return struct.pack("<Q", len(h)) + h + data


def u8(name, b, e, shape=None):
    shape = [e - b] if shape is None else shape
    return f'"{name}":{{"dtype":"U8","shape":{json.dumps(shape)},"data_offsets":[{b},{e}]}}'


MALFORMED = {
    "too_short": b"\x01\x02\x03",
    "header_len_past_eof": struct.pack("<Q", 1000) + b"{}",
    "header_len_absurd": struct.pack("<Q", 200_000_000) + b"{}",
    "not_json": st_bytes("{not json}"),
    "nul_padding": st_bytes(b"{}\x00\x00"),
    "array_root": st_bytes("[]"),
    "metadata_not_string": st_bytes('{"__metadata__":{"a":1}}'),
    "unknown_dtype": st_bytes('{"w":{"dtype":"Q7","shape":[1],"data_offsets":[0,1]}}', b"x"),
    "negative_dim": st_bytes('{"w":{"dtype":"U8","shape":[-1],"data_offsets":[0,1]}}', b"x"),
    "float_dim": st_bytes('{"w":{"dtype":"U8","shape":[1.5],"data_offsets":[0,1]}}', b"x"),
    "shape_overflow": st_bytes('{"w":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,4]}}', b"xxxx"),
    "missing_shape": st_bytes('{"w":{"dtype":"U8","data_offsets":[0,1]}}', b"x"),
    "offsets_3": st_bytes('{"w":{"dtype":"U8","shape":[1],"data_offsets":[0,1,2]}}', b"x"),
    "end_before_begin": st_bytes('{"w":{"dtype":"U8","shape":[0],"data_offsets":[1,0]}}', b"x"),
    "size_mismatch": st_bytes('{"w":{"dtype":"F32","shape":[2],"data_offsets":[0,4]}}', b"xxxx"),
    "out_of_range": st_bytes("{" + u8("w", 0, 8) + "}", b"xxxx"),
    "hole_at_start": st_bytes("{" + u8("w", 1, 4) + "}", b"xxxx"),
    "hole_between": st_bytes("{" + u8("a", 0, 1) + "," + u8("b", 2, 4) + "}", b"xxxx"),
    "overlap": st_bytes("{" + u8("a", 0, 3) + "," + u8("b", 2, 4) + "}", b"xxxx"),
    "trailing_bytes": st_bytes("{" + u8("a", 0, 2) + "}", b"xxxx"),
    "truncated_data": st_bytes("{" + u8("a", 0, 4) + "}", b"xx"),
}


def python_accepts(path):
    try:
        with safe_open(path, framework="pt") as f:
            for k in f.keys():
                f.get_tensor(k)
        return True
    except Exception:
        return False


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_files_are_rejected_like_the_reference(tmp_path, case):
    path = tmp_path / f"{case}.safetensors"
    path.write_bytes(MALFORMED[case])
    assert not python_accepts(path), f"reference unexpectedly accepts {case}"
    p = run_tool("check", path, check=False)
    assert p.returncode == 1, f"we accepted {case}"
    assert f"{case}.safetensors" in p.stderr, p.stderr  # the message names the file
    assert "Segmentation" not in p.stderr


ACCEPTED = {
    "leading_space": st_bytes(" {" + u8("a", 0, 1) + "}", b"x"),
    "null_metadata": st_bytes('{"__metadata__":null,' + u8("a", 0, 1) + "}", b"x"),
    "extra_field": st_bytes('{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1],"extra":1}}', b"x"),
    "empty_same_offset": st_bytes("{" + u8("e", 0, 0, [0]) + "," + u8("f", 0, 0, [2, 0]) + "," + u8("a", 0, 1) + "}", b"x"),
    "unpadded_odd_header": st_bytes('{"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}', struct.pack("<2f", 1.5, -2)),
    "tab_padding": st_bytes("{}\t\n  "),
}


@pytest.mark.parametrize("case", sorted(ACCEPTED))
def test_edge_case_files_accepted_like_the_reference(tmp_path, case):
    path = tmp_path / f"{case}.safetensors"
    path.write_bytes(ACCEPTED[case])
    assert python_accepts(path)
    d = dump(path)
    with safe_open(path, framework="pt") as f:
        for k in f.keys():
            assert bytes.fromhex(d["tensors"][k]["hex"]) == raw_bytes(f.get_tensor(k)), k


def test_duplicate_names_are_rejected_although_the_reference_keeps_the_last(tmp_path):
    # Deliberately stricter: two entries for one name means a broken writer.
    path = tmp_path / "dup.safetensors"
    path.write_bytes(st_bytes("{" + u8("a", 0, 1) + "," + u8("a", 0, 1) + "}", b"x"))
    p = run_tool("check", path, check=False)
    assert p.returncode == 1 and "'a' twice" in p.stderr
