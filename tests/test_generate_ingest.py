"""Ingest: every file type, directories, chunking with overlap and ids; instructions from chunks."""

from __future__ import annotations

import json
import shutil
from collections import Counter

import pytest

from hubtools.errors import HubtoolsError, InputUnusableError
from hubtools.generate.ingest import chunk_text, html_to_text, ingest, read_documents
from hubtools.generate.instructions import TASK_TYPES, generate_instructions, key_terms
from hubtools.records import load_extra

LOIRE = ("The Loire is the longest river in France. It flows 1006 kilometres from the Massif Central "
         "to the Atlantic Ocean at Saint-Nazaire. Its valley is known for its castles and vineyards.")


def make_pdf(lines: list[str]) -> bytes:
    """A one-page PDF with these lines in Helvetica, written by hand (the PDF syntax, no library)."""
    def esc(s: str) -> str:
        return s.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")

    content = "BT /F1 12 Tf 72 720 Td 14 TL " + " ".join(f"({esc(line)}) Tj T*" for line in lines) + " ET"
    objects = ["<< /Type /Catalog /Pages 2 0 R >>", "<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
               "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
               "/Resources << /Font << /F1 5 0 R >> >> >>",
               f"<< /Length {len(content)} >>\nstream\n{content}\nendstream",
               "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>"]
    out, offsets = b"%PDF-1.4\n", []
    for i, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += f"{i} 0 obj\n{body}\nendobj\n".encode("latin-1")
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    out += b"".join(f"{o:010d} 00000 n \n".encode() for o in offsets)
    out += f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
    return out


@pytest.fixture
def docs(tmp_path, corpus):
    root = tmp_path / "docs"
    (root / "sub").mkdir(parents=True)
    (root / "loire.txt").write_text(LOIRE)
    (root / "guide.md").write_text("# Rhone\n\nThe **Rhone** rises in the [Alps](https://x.org) and ends in the "
                                   "Mediterranean.\n")
    (root / "sub" / "page.html").write_text(
        "<html><head><title>T</title><style>p{color:red}</style></head><body><h1>Seine</h1>"
        "<p>The Seine flows through <b>Paris</b>.</p><script>alert('x')</script></body></html>")
    (root / "sub" / "report.pdf").write_bytes(make_pdf(["The Garonne flows to Bordeaux.",
                                                        "It joins the Dordogne (at the Gironde)."]))
    rows = [json.loads(line) for line in open(corpus / "llama_factory" / "c4_demo.jsonl")]
    with open(root / "web.jsonl", "w") as fh:
        for row in rows[:3]:
            fh.write(json.dumps(row) + "\n")
        fh.write(json.dumps({"title": "no text here"}) + "\n")
    (root / "image.png").write_bytes(b"\x89PNG")
    (root / ".hidden.txt").write_text("secret")
    return root


def test_every_file_type_of_a_directory_is_read(docs):
    skipped = []
    documents = {d.doc_id: d.text for d in read_documents(docs, skipped=skipped)}
    assert sorted(documents) == ["guide.md", "loire.txt", "sub/page.html", "sub/report.pdf",
                                 "web.jsonl#0", "web.jsonl#1", "web.jsonl#2"]
    assert documents["guide.md"] == "Rhone\n\nThe Rhone rises in the Alps and ends in the Mediterranean."
    assert documents["sub/page.html"] == "Seine\n\nThe Seine flows through Paris."
    assert documents["sub/report.pdf"] == "The Garonne flows to Bordeaux.\nIt joins the Dordogne (at the Gironde)."
    assert documents["web.jsonl#0"].startswith("Don’t think you need all the bells and whistles?")
    assert {s["reason"] for s in skipped} == {"no 'text' text", "unsupported file type .png"}


def test_html_text_skips_scripts_and_keeps_blocks():
    assert html_to_text("<div>a<br>b</div><noscript>x</noscript><ul><li>c</li><li>d&amp;e</li></ul>") == \
        "a\nb\n\nc\n\nd&e"


class TestChunking:
    def test_char_chunks_cover_the_text_with_overlap_on_word_breaks(self, corpus):
        text = (corpus / "llama_factory" / "wiki_demo.txt").read_text()[:20_000]
        spans = chunk_text(text, size=1000, overlap=100)
        assert spans[0][0] == 0 and spans[-1][1] == len(text)
        for (s1, e1), (s2, e2) in zip(spans, spans[1:]):
            assert s2 < e1 <= s2 + 1000 * 0.15  # they overlap, by about the overlap
            assert e1 - s1 <= 1000 and (e1 == len(text) or text[e1 - 1].isspace() or text[e1].isspace())
            assert s2 == 0 or text[s2 - 1].isspace()

    def test_token_chunks(self):
        text = " ".join(f"w{i}" for i in range(25))
        spans = chunk_text(text, size=10, overlap=3, unit="tokens")
        chunks = [text[s:e].split() for s, e in spans]
        assert [c[0] for c in chunks] == ["w0", "w7", "w14", "w21"] and all(len(c) == 10 for c in chunks[:3])
        assert chunks[-1][-1] == "w24"

    def test_token_chunks_with_a_real_tokenizer(self, tiny_causal_lm):
        from hubtools.generate.ingest import tokenizer_spans

        spans = tokenizer_spans(str(tiny_causal_lm))("the capital of france is paris")
        assert spans[0] == (0, 3) and len(spans) == 6
        text = "the capital of france is paris . " * 10
        chunks = chunk_text(text, size=8, overlap=2, unit="tokens", tokenize=tokenizer_spans(str(tiny_causal_lm)))
        # 7 tokens a sentence, windows of 8 every 6 tokens: the second starts on the first "."
        assert len(chunks) == 12 and text[chunks[1][0]:].startswith(". the capital")

    def test_bad_settings_are_refused(self):
        with pytest.raises(HubtoolsError, match="0 <= overlap < size"):
            chunk_text("x", size=10, overlap=10)


def test_ingest_gives_text_records_with_doc_and_chunk_ids(docs):
    result = ingest(docs, size=120, overlap=20)
    extras = [load_extra(r["hubtools_extra"]) for r in result.dataset]
    assert result.summary["documents"] == 7 and result.summary["chunks"] == len(result.dataset)
    loire = [e for e in extras if e["doc_id"] == "loire.txt"]
    assert [e["chunk_id"] for e in loire] == [f"loire.txt:{k}" for k in range(len(loire))] and len(loire) == 2
    first = next(r["text"] for r, e in zip(result.dataset, extras) if e["chunk_id"] == "loire.txt:0")
    assert first == LOIRE[loire[0]["start"]:loire[0]["end"]].strip() and LOIRE.startswith(first)
    assert result.summary["by_type"] == {".md": 1, ".txt": 1, ".html": 1, ".pdf": 1, ".jsonl": 3}
    assert len(result.summary["skipped"]) == 2


def test_ingest_refuses_what_has_no_text(tmp_path):
    (tmp_path / "empty.txt").write_text("  \n")
    with pytest.raises(InputUnusableError, match="no text to ingest"):
        ingest(tmp_path)
    (tmp_path / "bad.pdf").write_bytes(b"%PDF-1.4 garbage")
    with pytest.raises(InputUnusableError, match="not a readable PDF"):
        ingest(tmp_path / "bad.pdf")


@pytest.fixture
def wiki_chunks(tmp_path, corpus):
    shutil.copy(corpus / "llama_factory" / "wiki_demo.txt", tmp_path / "wiki.txt")
    text = (tmp_path / "wiki.txt").read_text()[:30_000]
    (tmp_path / "wiki.txt").write_text(text)
    return ingest(tmp_path / "wiki.txt", size=1200, overlap=100).dataset


class TestInstructions:
    def test_mix_negatives_edges_and_varied_templates(self, wiki_chunks):
        result = generate_instructions(wiki_chunks, per_chunk=4, negative_ratio=0.1, edge_ratio=0.05, seed=1)
        s = result.summary
        extras = [load_extra(r["hubtools_extra"]) for r in result.dataset]
        planned = len(wiki_chunks) * 4
        assert s["planned"] == planned and s["prompts"] + s["near_duplicates_removed"] == planned
        assert round(planned * 0.1) - s["near_duplicates_removed"] <= s["negatives"] <= round(planned * 0.1)
        assert set(s["by_task_type"]) == set(TASK_TYPES)
        counts = Counter(e["task_type"] for e in extras if e["task_type"] in TASK_TYPES)
        assert max(counts.values()) - min(counts.values()) <= 0.2 * planned / 8 + 2
        assert s["templates_used"] >= 30 and s["largest_template_share"] < 0.05
        for e, record in zip(extras, result.dataset):
            prompt = record["messages"][0]["content"]
            assert e["synthetic"] and e["source_text"] in prompt and e["instruction"] in prompt
            assert e["source_chunk"].startswith("wiki.txt:") and record["messages"][0]["role"] == "user"
            if e["negative"]:
                term = e["reference"].removeprefix("The passage does not say anything about ").rstrip(".")
                assert term.lower() not in e["source_text"].lower()
        assert {e["complexity"] for e in extras} == {"simple", "multi_step", "chain_of_thought"}
        assert set(s["edge_cases"]) <= {"format_json", "one_sentence", "empty_extraction"} and s["edge_cases"]

    def test_a_mix_is_followed_exactly(self, wiki_chunks):
        result = generate_instructions(wiki_chunks, per_chunk=5, task_mix={"qa": 3, "summarization": 1},
                                       complexity_mix={"simple": 1}, negative_ratio=0, edge_ratio=0)
        total = len(wiki_chunks) * 5
        by_type = result.summary["by_task_type"]
        assert by_type["qa"] + by_type["summarization"] + result.summary["near_duplicates_removed"] == total
        assert set(by_type) == {"qa", "summarization"} and result.summary["by_complexity"].keys() == {"simple"}

    def test_near_duplicate_instructions_of_a_chunk_are_removed(self, wiki_chunks):
        one = wiki_chunks.select(range(1))
        result = generate_instructions(one, per_chunk=40, task_mix={"summarization": 1},
                                       complexity_mix={"simple": 1}, negative_ratio=0, edge_ratio=0)
        instructions = [load_extra(r["hubtools_extra"])["instruction"] for r in result.dataset]
        assert len(instructions) == len(set(instructions)) == 4  # the four summarization templates
        assert result.summary["near_duplicates_removed"] == 36

    def test_an_unknown_task_type_names_the_choices(self, wiki_chunks):
        with pytest.raises(HubtoolsError, match="unknown mix keys: poetry"):
            generate_instructions(wiki_chunks, task_mix={"poetry": 1})


def test_key_terms():
    assert key_terms(LOIRE, 3) == ["Saint-Nazaire", "Atlantic", "Central"]  # capitalised, then longest
    assert key_terms("the river, the river and the river by the Loire", 2) == ["river", "Loire"]  # frequent first


def test_a_model_can_write_the_instructions(wiki_chunks, openai_server, tmp_path):
    from hubtools.generate import InferenceClientBackend
    from tests.fixtures.openai import OPENAI_TOKEN

    backend = InferenceClientBackend("stand-in-large", endpoint=openai_server.base_url, token=OPENAI_TOKEN)
    chunks = wiki_chunks.select(range(3))
    result = generate_instructions(chunks, per_chunk=4, negative_ratio=0.25, edge_ratio=0, backend=backend,
                                   out_dir=tmp_path)
    extras = [load_extra(r["hubtools_extra"]) for r in result.dataset]
    assert result.summary["generator"] == "stand-in-large" and result.summary["run"]["generated"] == 12
    assert all(e["generator"] == "stand-in-large" and e["template"].startswith("model|") for e in extras)
    negatives = [e for e in extras if e["negative"]]
    assert len(negatives) == 3 and all("budget in" in e["instruction"] for e in negatives)
    assert all(e["reference"] == "The passage does not contain this information." for e in negatives)
    asked = [r.messages[1]["content"] for r in openai_server.completions()]
    assert sum("cannot be answered" in a for a in asked) == 3 and all("<passage>" in a for a in asked)
    assert (tmp_path / "checkpoint.instructions.jsonl").exists()
