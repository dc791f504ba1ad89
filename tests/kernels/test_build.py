"""The build layer: a compile error reaches the caller with the compiler's own message, and the
flags follow the requested ISA."""

import re
from pathlib import Path

import pytest

import kernels
from kernels import build


def test_compile_error_carries_the_compiler_message(tmp_path):
    bad = tmp_path / "broken.cpp"
    bad.write_text("int main() { return undefined_name_in_broken_source; }\n")
    with pytest.raises(RuntimeError) as info:
        build.build("broken_probe", [bad], tmp_path / "build", "generic")
    message = str(info.value)
    assert "Error building extension" in message
    assert "broken.cpp" in message and "undefined_name_in_broken_source" in message


@pytest.mark.parametrize("isa, flag", [("avx512bf16", "-mavx512bf16"), ("avx2", "-mavx2"),
                                       ("generic", None)])
def test_flags_follow_the_isa(monkeypatch, isa, flag):
    monkeypatch.setenv("KERNELS_ISA", isa)
    assert build.detect_isa() == isa
    flags = build.compile_flags(isa)
    assert (flag in flags) if flag else not any(f.startswith("-mavx") for f in flags)
    assert build.build_dir(isa).name.startswith(isa + "-")


def test_unknown_isa_is_refused(monkeypatch):
    monkeypatch.setenv("KERNELS_ISA", "sse9")
    with pytest.raises(ValueError, match="^KERNELS_ISA: expected one of"):
        build.detect_isa()


def test_python_chunk_size_matches_the_kernel():
    """kernels.CHUNK_SIZE (used for the brgemm_bf16 baseline's chunking) mirrors kChunk."""
    source = (Path(kernels.__file__).parent / "csrc" / "gdn.cpp").read_text()
    match = re.search(r"constexpr int64_t kChunk = (\d+);", source)
    assert match and int(match.group(1)) == kernels.CHUNK_SIZE
