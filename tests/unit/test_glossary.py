"""One glossary: no module spells the name of a figure itself; it takes it from
consumers/glossary.py, so that the live view, the report, the boards and the e-mails
cannot drift apart again."""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

from onestop.consumers import glossary
from onestop.consumers.glossary import RETIRED, TERMS

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("models", "common", "consumers", "alerts", "streams")
GLOSSARY = ROOT / "consumers" / "glossary.py"

# Modules that may spell a name, and why.
MODULES_EXCEPTED = {
    # The Prometheus help texts: they describe each series to whoever scrapes it, and
    # models/ sits below the glossary's layer and cannot import it.
    "models/measures.py",
}
# (module, piece of a literal, casefolded) that may stay spelled out, and why.
EXCEPTIONS = {
    ("streams/simulate.py", "đạt"),  # a given name among the simulated applicants'
}


def _words(term: str) -> str:
    return " ".join(term.casefold().split())


def _forbidden() -> tuple[set[str], set[str]]:
    """Texts no literal may be (a whole piece of it), and texts no literal may contain:
    names of four words (Vietnamese syllables) or more are not the words of an ordinary
    sentence, shorter ones ("Đang quá hạn", "Late") are, and count only as a label on
    their own."""
    whole, anywhere = set(), set()
    for text in [part for term in TERMS for part in (term.vi, term.en, term.short, term.short_en)
                 if part]:
        whole.add(_words(text))
        if len(text.split()) >= 4:
            anywhere.add(_words(text))
    anywhere |= {_words(text) for text in RETIRED}
    whole |= {_words(text) for text in RETIRED}
    return whole, anywhere


def _literals(tree: ast.AST) -> Iterator[tuple[int, str]]:
    """Every string constant, an f-string's literal parts included; docstrings left out
    (they explain, they are not shown)."""
    docstrings = {id(node.body[0].value) for node in ast.walk(tree)
                  if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef |
                                ast.AsyncFunctionDef)
                  and node.body and isinstance(node.body[0], ast.Expr)
                  and isinstance(node.body[0].value, ast.Constant)}
    for node in ast.walk(tree):
        if (isinstance(node, ast.Constant) and isinstance(node.value, str)
                and id(node) not in docstrings):
            yield node.lineno, node.value


def _pieces(text: str) -> list[str]:
    """A bilingual label's sides and lines: "Đúng hạn\\nOn time", "Quá hạn / late"."""
    return [_words(piece.strip(" :.,;()")) for piece in re.split(r" / |\n", text)]


def spelled(module: str, source: str) -> list[str]:
    """The names `source` writes out, each as "module:line: name in literal"."""
    whole, anywhere = _forbidden()
    found = []
    for line, text in _literals(ast.parse(source)):
        if re.fullmatch(r"[a-z0-9_]*", text):
            continue  # a key or a code ("received", "late"), not a label
        folded = _words(text)
        hits = {piece for piece in _pieces(text) if piece in whole}
        hits |= {name for name in anywhere if name in folded}
        found += [f"{module}:{line}: {hit!r} in {text!r}" for hit in sorted(hits)
                  if (module, hit) not in EXCEPTIONS]
    return found


def spelled_labels() -> list[str]:
    found = []
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            module = str(path.relative_to(ROOT))
            if path != GLOSSARY and module not in MODULES_EXCEPTED:
                found += spelled(module, path.read_text(encoding="utf-8"))
    return found


def test_no_module_spells_a_label_the_glossary_holds() -> None:
    found = spelled_labels()
    assert not found, "take these from consumers/glossary.py:\n" + "\n".join(found)


def test_the_scan_finds_labels_and_leaves_keys_and_sentences() -> None:
    source = """
def table():
    \"\"\"Đúng hạn / On time, in a docstring: explained, not shown.\"\"\"
    columns = ["Đúng hạn\\nOn time", f"Luân chuyển hồ sơ điện tử trong kỳ / {period}"]
    old = "Luân chuyển điện tử / e-transfer"
    key = figures["late"]
    return f"Cuối kỳ còn {n} hồ sơ đang quá hạn."
"""
    found = [line.split(": ", 1)[1] for line in spelled("example.py", source)]
    assert sorted(hit.split(" in ")[0] for hit in found) == sorted([
        "'on time'", "'đúng hạn'", "'luân chuyển hồ sơ điện tử'", "'e-transfer'",
        "'luân chuyển điện tử'"])


def test_each_name_names_one_figure() -> None:
    for language in ("vi", "en"):
        names = [_words(getattr(term, language)) for term in TERMS]
        shared = {name for name in names if names.count(name) > 1}
        assert not shared, shared


def test_every_target_has_a_name() -> None:
    from onestop.models.targets import TARGETS

    assert {target.metric for target in TARGETS} == set(glossary.TARGET_NAMES)


def test_the_alerts_words_use_no_retired_name() -> None:
    """The alert rules are written by hand, and their summaries reach the heads of
    agencies by e-mail: they may not bring back a name the glossary retired."""
    found = []
    for path in sorted((ROOT / "deploy" / "prometheus").glob("*.y*ml")):
        text = _words(path.read_text(encoding="utf-8"))
        found += [f"{path.name}: {name!r}" for name in RETIRED if _words(name) in text]
    assert not found, found
