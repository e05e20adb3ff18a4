"""The blocks `ccl detect` hands its processes hold exactly the lines that reading line by line gives,
each once: read here (compressed, stdin) or as byte ranges each process reads itself (plain files),
with blank lines, lines longer than a range and without a final newline."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from ccl.detection.stream.event_files import (
    InputError,
    Source,
    count_lines,
    last_line,
    read_blocks,
    read_lines,
    read_span,
    spans,
)

CONTENTS = [b"", b"\n", b"\n\n", b"a", b"a\n", b"a\nb", b"a\nb\n", b"a\n\nb\n\n", b"\n\na\n",
            b'{"x": 1}\r\n{"y": "a\\nb"}\n  \n' * 7 + b"last", bytes(range(1, 256)) * 3 + b"\nend\n"]


def lines_of_blocks(blocks) -> list[bytes]:
    return [line for block in blocks if block is not None for line in block.split(b"\n")]


@pytest.mark.parametrize("content", CONTENTS)
@pytest.mark.parametrize("size", [1, 2, 3, 64, 1 << 20])
def test_blocks_hold_the_lines_read_one_by_one(tmp_path: Path, content: bytes, size: int):
    plain, packed = tmp_path / "plain.ndjson", tmp_path / "packed.ndjson"
    plain.write_bytes(content)
    packed.write_bytes(gzip.compress(content))
    source = Source("x", plain)
    expected = [line.removesuffix(b"\n") for _, line in read_lines(source)]
    assert lines_of_blocks(block for _, block in read_blocks(source, size)) == expected
    assert lines_of_blocks(block for _, block in read_blocks(Source("x", packed), size)) == expected
    ranges = spans(plain, size)
    assert lines_of_blocks(read_span(source, start, end, len(content)) for start, end in ranges) == expected
    assert count_lines(plain) == len(expected)
    assert last_line(source) == next((line for line in reversed(expected) if line.strip()), None)


def test_a_file_gone_between_planning_and_reading_is_named(tmp_path: Path):
    path = tmp_path / "gone.ndjson"
    path.write_bytes(b"a\n")
    ranges = spans(path, 1 << 20)
    path.unlink()
    with pytest.raises(InputError, match=r"gone\.ndjson: No such file"):
        read_span(Source("gone.ndjson", path), *ranges[0], 2)
