"""The blocks `ccl detect` hands its processes hold exactly the lines, and line numbers, that reading
line by line gives: forwards, backwards, compressed, with blank lines and without a final newline."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from ccl.detection.stream.event_files import (
    Source,
    count_lines,
    read_blocks,
    read_blocks_backwards,
    read_lines,
    read_lines_backwards,
)

CONTENTS = [b"", b"\n", b"\n\n", b"a", b"a\n", b"a\nb", b"a\nb\n", b"a\n\nb\n\n", b"\n\na\n",
            b'{"x": 1}\r\n{"y": "a\\nb"}\n  \n' * 7 + b"last", bytes(range(1, 256)) * 3 + b"\nend\n"]


def lines_of_blocks(blocks, backwards: bool = False) -> list[tuple[int, bytes]]:
    found = []
    for first, block in blocks:
        numbered = list(enumerate(block.split(b"\n"), start=first))
        found.extend(reversed(numbered) if backwards else numbered)
    return found


@pytest.mark.parametrize("content", CONTENTS)
@pytest.mark.parametrize("size", [1, 3, 64, 1 << 20])
def test_blocks_hold_the_lines_read_one_by_one(tmp_path: Path, content: bytes, size: int):
    plain, packed = tmp_path / "plain.ndjson", tmp_path / "packed.ndjson"
    plain.write_bytes(content)
    packed.write_bytes(gzip.compress(content))
    expected = [(number, line.removesuffix(b"\n")) for number, line in read_lines(Source("x", plain))]
    assert lines_of_blocks(read_blocks(Source("x", plain), size)) == expected
    assert lines_of_blocks(read_blocks(Source("x", packed), size)) == expected
    total = count_lines(plain)
    backwards = list(read_lines_backwards(Source("x", plain), total))
    assert lines_of_blocks(read_blocks_backwards(Source("x", plain), total, size), backwards=True) == backwards
