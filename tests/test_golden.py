"""Speed work changes no output: ``derive``'s text, JSON and LaTeX and ``render``'s DOT are
byte-identical to the golden files written before it (see tests/golden.py)."""
import difflib
import json

import pytest

import golden

HASHES = json.loads(golden.HASHES.read_text(encoding="utf-8"))
CASES = [pytest.param(case, id=case[0], marks=[pytest.mark.slow] if case[-1] >= 64 else [])
         for case in golden.targets()]


def test_every_case_has_its_golden_files():
    expected = {f"{case[0]}.{fmt}" for case in golden.targets()
                for fmt in ("txt", "json", "tex", "dot") + (("full.tex",) if case[-1] <= golden.FULL_TEX_UP_TO else ())}
    assert set(HASHES) == expected
    for key in expected:
        if int(key.rsplit("/m", 1)[1].split(".")[0]) <= golden.FULL_UP_TO:
            assert golden.sha256((golden.FOLDER / key).read_text(encoding="utf-8")) == HASHES[key], key


@pytest.mark.parametrize("case", CASES)
def test_output_is_byte_identical(case):
    stem, m = case[0], case[-1]
    for fmt, text in golden.case_outputs(case).items():
        key = f"{stem}.{fmt}"
        if golden.sha256(text) == HASHES[key]:
            continue
        if m <= golden.FULL_UP_TO:  # show where it differs
            before = (golden.FOLDER / key).read_text(encoding="utf-8").splitlines()
            diff = "\n".join(list(difflib.unified_diff(before, text.splitlines(), "golden", "now", lineterm=""))[:40])
            pytest.fail(f"{key} changed:\n{diff}")
        pytest.fail(f"{key} changed (sha256 {golden.sha256(text)[:12]}, golden {HASHES[key][:12]})")
