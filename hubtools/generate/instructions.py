"""Instructions from chunks: task types and complexity levels in a chosen mix, negative examples,
edge cases, varied templates, near-duplicates removed.

Every prompt carries its passage, so the answer can be checked against it (groundedness).
Without a backend the instruction is written from templates and the passage's key terms
(``generator: "template"``); with one, the model writes it (``generator: <model>``) through
the resumable runner, and templates only frame the passage.

* **Mix**: ``task_mix`` and ``complexity_mix`` are weights; slots are assigned by largest
  remainder, so the counts match the mix as closely as whole numbers allow.
* **Negative examples** (``negative_ratio``): questions about something the passage does not
  contain; their ``reference`` answer says the passage does not say.
* **Edge cases** (``edge_ratio``): strict formats (JSON, one sentence) and extractions with
  nothing to extract (``reference``: there are none).
* **Near-duplicates**: prompts of one chunk whose instructions overlap by word-shingle
  Jaccard >= ``dedup_threshold`` (the shingling of :mod:`hubtools.checks.near_duplicates`)
  are dropped and counted.
"""

from __future__ import annotations

import logging
import os
import random
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from datasets import Dataset

from ..convert import write
from ..errors import HubtoolsError, UnknownFormatError, UnparseableOutputError
from ..formats import get_format
from ..io import CONTAINERS, atomic_write, container_for_path, output_set
from ..load import canonical_dataset
from ..records import EXTRA, Kind, dump_extra, load_extra, message
from ..text import jaccard, word_shingles
from .backends import Backend
from .ingest import ingest
from .runner import Runner, Task

__all__ = ["COMPLEXITIES", "TASK_TYPES", "InstructionsResult", "generate_instructions", "instructions_to_dir",
           "key_terms"]

logger = logging.getLogger(__name__)

TASK_TYPES = ("qa", "summarization", "code", "reasoning", "creative_writing", "extraction", "classification",
              "rewriting")
COMPLEXITIES = ("simple", "multi_step", "chain_of_thought")

#: instruction templates per task type; ``{term}``/``{term2}`` are key terms of the passage
_TEMPLATES: dict[str, tuple[str, ...]] = {
    "qa": ("What does the passage say about {term}?", "According to the text, how is {term} described?",
           "Answer from the passage: what is the role of {term}?", "Which details does the text give about {term}?"),
    "summarization": ("Summarize the passage in two or three sentences.", "Write a one-paragraph summary of the text, "
                      "focusing on {term}.", "Give the main points of the passage as a short bulleted list.",
                      "Condense the text into a headline and a single supporting sentence."),
    "code": ("Write a Python function that returns the key terms of the passage ({term}, {term2}) as a list.",
             "Write a Python dictionary literal that records the facts the passage states about {term}.",
             "Write a short Python script that prints each sentence of the passage that mentions {term}."),
    "reasoning": ("Based on the passage, why does {term} matter? Justify your answer with the text.",
                  "Using only the passage, what can be inferred about the relationship between {term} and {term2}?",
                  "If the passage is accurate, what follows for {term}? Explain."),
    "creative_writing": ("Write a short poem inspired by the passage's description of {term}.",
                         "Write a four-sentence story set in the world of the passage, featuring {term}.",
                         "Write a diary entry by someone who has just read about {term} in this text."),
    "extraction": ("List every named entity (people, places, organisations) that appears in the passage.",
                   "Extract all numbers and dates in the passage, each with what it refers to.",
                   "Quote the sentences of the passage that mention {term}."),
    "classification": ("Classify the passage's topic as one of: science, history, geography, culture, technology, "
                       "other. Answer with the label and one reason.",
                       "Is the passage mainly descriptive, argumentative or narrative? Answer with one word and a reason.",
                       "Does the passage present {term} positively, negatively or neutrally? Explain briefly."),
    "rewriting": ("Rewrite the passage in plain language for a ten-year-old.",
                  "Rewrite the passage as a formal encyclopedia paragraph.",
                  "Paraphrase the passage's statements about {term} without copying its wording."),
}
_COMPLEXITY_FRAMES = {
    "simple": ("{instruction}",),
    "multi_step": ("First, find the parts of the passage about {term}. Then: {instruction}",
                   "Do this in two steps: identify the relevant sentences, then answer. {instruction}"),
    "chain_of_thought": ("{instruction} Think step by step and show your reasoning before the final answer.",
                         "{instruction} Explain your reasoning step by step, then state the answer on its own line."),
}
#: how the passage and the instruction are framed in the final prompt
_CONTEXT_FRAMES = (
    "{instruction}\n\nPassage:\n{passage}",
    "Read the text below and answer.\n\n\"\"\"\n{passage}\n\"\"\"\n\n{instruction}",
    "Context:\n{passage}\n\nTask: {instruction}",
    "<document>\n{passage}\n</document>\n\n{instruction}",
)
_NEGATIVE_TEMPLATES = ("What does the passage say about {term}?", "According to the text, when did {term} begin?",
                       "How does the passage describe the cost of {term}?")
_EDGE_CASES = {
    "format_json": ('Answer as a JSON object with keys "topic" and "key_terms": what is the passage about?', None),
    "one_sentence": ("In exactly one sentence, state the main point of the passage.", None),
    "empty_extraction": ("List every email address that appears in the passage.",
                         "There are no email addresses in the passage."),
}
#: Formats that hold prompts without a reply (user turns only) and read back as such.
PROMPT_FORMATS = ("mt_bench",)
_EMAIL = re.compile(r"\b[\w.+-]+@[\w-]+\.[\w.]+\b")
_STOP = frozenset("""the and for that with this from which were was are have has had not but its their there
they them then than into when where what about also more most such been being other over only these those
would could should while after before under between each many some very often because through""".split())


@dataclass
class InstructionsResult:
    """The prompts (a prompt-only SFT dataset) and the summary of what was made and dropped."""

    dataset: Dataset
    summary: dict[str, Any] = field(default_factory=dict)


def key_terms(text: str, k: int = 5) -> list[str]:
    """The passage's most telling words: frequent, long, non-stopwords (capitalised ones first).

    >>> key_terms("The Loire river flows west. The Loire river is long.", 2)
    ['Loire', 'river']
    """
    words = re.findall(r"[A-Za-z][A-Za-z'-]{2,}", text)
    counts = Counter(w.lower() for w in words)
    shown: dict[str, str] = {}
    for w in words:
        shown.setdefault(w.lower(), w)
    ranked = sorted((w for w in counts if w not in _STOP),
                    key=lambda w: (-(counts[w] + shown[w][0].isupper()), -len(w), w))
    return [shown[w] for w in ranked[:k]]


def _quotas(mix: dict[str, float], total: int, allowed: Sequence[str]) -> list[str]:
    unknown = sorted(set(mix) - set(allowed))
    if unknown:
        raise HubtoolsError(f"unknown mix keys: {', '.join(unknown)}", hint=f"use {', '.join(allowed)}")
    weights = {k: float(v) for k, v in mix.items() if v > 0}
    if not weights:
        raise HubtoolsError("the mix has no positive weight", hint="give at least one weight > 0")
    scale = total / sum(weights.values())
    exact = {k: w * scale for k, w in weights.items()}
    counts = {k: int(v) for k, v in exact.items()}
    for k in sorted(exact, key=lambda k: -(exact[k] - counts[k]))[: total - sum(counts.values())]:
        counts[k] += 1
    return [k for k in allowed if k in counts for _ in range(counts[k])]


@dataclass
class _Slot:
    chunk: int
    kind: str  # "task", "negative" or an edge case name
    task_type: str
    complexity: str


def _plan(chunks: int, per_chunk: int, task_mix, complexity_mix, negative_ratio, edge_ratio, rng) -> list[_Slot]:
    total = chunks * per_chunk
    negatives = round(total * negative_ratio)
    edges = round(total * edge_ratio)
    kinds = ["negative"] * negatives + [list(_EDGE_CASES)[i % len(_EDGE_CASES)] for i in range(edges)]
    kinds += ["task"] * (total - len(kinds))
    tasks = _quotas(task_mix, total, TASK_TYPES)
    complexities = _quotas(complexity_mix, total, COMPLEXITIES)
    for seq in (kinds, tasks, complexities):
        rng.shuffle(seq)
    return [_Slot(i // per_chunk, kinds[i], tasks[i], complexities[i]) for i in range(total)]


def _writer_prompt(passage: str, slot: _Slot) -> list[dict[str, str]]:
    if slot.kind == "negative":
        ask = ("Write one question on the topic of this passage that cannot be answered from it "
               "(the passage does not contain the answer).")
    else:
        ask = (f"Write one instruction a user might give about this passage. Task type: {slot.task_type}. "
               f"Complexity: {slot.complexity.replace('_', ' ')}.")
    return [{"role": "system", "content": "You write instructions for training data. Reply with the instruction "
                                          "only: no answer, no preamble, no quotes."},
            {"role": "user", "content": f"<passage>\n{passage}\n</passage>\n{ask}"}]


def _clean_instruction(text: str) -> str:
    line = next((ln.strip() for ln in text.strip().splitlines() if ln.strip()), "")
    line = re.sub(r"^(instruction|question)\s*:\s*", "", line, flags=re.I).strip().strip('"“”')
    if len(line) < 8:
        raise UnparseableOutputError("the instruction is empty or too short")
    return line


def generate_instructions(chunks: Dataset, *, per_chunk: int = 3, task_mix: dict[str, float] | None = None,
                          complexity_mix: dict[str, float] | None = None, negative_ratio: float = 0.1,
                          edge_ratio: float = 0.05, seed: int = 0, backend: Backend | None = None,
                          dedup_threshold: float = 0.8, out_dir: str | Path | None = None,
                          resume: bool = False, **runner_options: Any) -> InstructionsResult:
    """Write ``per_chunk`` prompts for every chunk of a ``text`` dataset (from :func:`ingest`).

    Args:
        task_mix: weights by task type (default: equal over :data:`TASK_TYPES`).
        complexity_mix: weights by complexity (default: 50% simple, 30% multi-step, 20% CoT).
        negative_ratio, edge_ratio: shares of negative examples and edge cases.
        backend: a model to write the instructions; ``None`` writes them from templates.
        out_dir, resume, runner_options: for the runner when a backend is used.

    Example:
        >>> result = generate_instructions(ingest("docs/").dataset, per_chunk=4)  # doctest: +SKIP
        >>> result.summary["by_task_type"]  # doctest: +SKIP
    """
    rng = random.Random(seed)
    records = list(chunks)
    texts = [r["text"] for r in records]
    extras = [load_extra(r.get(EXTRA)) for r in records]
    slots = _plan(len(records), per_chunk, task_mix or dict.fromkeys(TASK_TYPES, 1.0),
                  complexity_mix or {"simple": 0.5, "multi_step": 0.3, "chain_of_thought": 0.2},
                  negative_ratio, edge_ratio, rng)
    terms = [key_terms(t) or ["the topic"] for t in texts]
    written: dict[int, str] = {}
    run_summary = None
    if backend is not None:
        tasks = [Task(str(i), _writer_prompt(texts[s.chunk], s), {"temperature": 0.8, "max_tokens": 200, "seed": i},
                      parse=_clean_instruction, repair="Reply with the instruction only, on one line.")
                 for i, s in enumerate(slots) if s.kind in ("task", "negative")]
        checkpoint = Path(out_dir) / "checkpoint.instructions.jsonl" if out_dir else None
        outcome = Runner(backend, checkpoint=checkpoint, resume=resume, desc="instructions",
                         header={"stage": "instructions", "seed": seed, "per_chunk": per_chunk},
                         **runner_options).run(tasks)
        written = {int(k): r.value for k, r in outcome.results.items()}
        run_summary = outcome.stats.to_dict()
        run_summary["failed_slots"] = len(outcome.failures)
    rows: list[dict[str, Any]] = []
    dropped = Counter()
    for i, slot in enumerate(slots):
        row = _make_prompt(i, slot, texts, terms, extras, written, backend, rng)
        if row is None:
            dropped["not_written"] += 1
            continue
        rows.append(row)
    rows, removed = _drop_near_duplicates(rows, dedup_threshold)
    for index, row in enumerate(rows):
        row["hubtools_index"] = index
    final = [load_extra(r[EXTRA]) for r in rows]
    template_counts = Counter(e["template"] for e in final)
    summary = {
        "chunks": len(records), "per_chunk": per_chunk, "planned": len(slots), "prompts": len(rows),
        "near_duplicates_removed": removed, "not_written": dropped["not_written"],
        "generator": backend.model if backend else "template",
        "by_task_type": dict(Counter(e["task_type"] for e in final if not e["negative"] and not e.get("edge_case"))),
        "by_complexity": dict(Counter(e["complexity"] for e in final)),
        "negatives": sum(e["negative"] for e in final), "edge_cases": dict(Counter(e["edge_case"] for e in final
                                                                                  if e.get("edge_case"))),
        "templates_used": len(template_counts),
        "largest_template_share": round(max(template_counts.values()) / len(rows), 4) if rows else None,
        "seed": seed, "run": run_summary,
    }
    return InstructionsResult(canonical_dataset(rows, Kind.SFT), summary)


def _make_prompt(i: int, slot: _Slot, texts, terms, extras, written, backend, rng) -> dict[str, Any] | None:
    passage, chunk_terms, extra = texts[slot.chunk], terms[slot.chunk], extras[slot.chunk]
    term, term2 = chunk_terms[0], chunk_terms[1 % len(chunk_terms)]
    reference, edge_case, negative = None, None, slot.kind == "negative"
    if slot.kind in _EDGE_CASES:
        edge_case = slot.kind
        instruction, reference = _EDGE_CASES[slot.kind]
        if slot.kind == "empty_extraction" and _EMAIL.search(passage):
            reference = None  # the passage has some: an ordinary extraction after all
        template = f"edge:{slot.kind}"
        complexity = "simple"
    elif backend is not None:
        if i not in written:
            return None
        instruction, template, complexity = written[i], "model", slot.complexity
        if negative:
            reference = "The passage does not contain this information."
    elif negative:
        foreign = _foreign_term(slot.chunk, texts, terms, rng)
        k = rng.randrange(len(_NEGATIVE_TEMPLATES))
        instruction = _NEGATIVE_TEMPLATES[k].format(term=foreign)
        reference = f"The passage does not say anything about {foreign}."
        template, complexity = f"negative:{k}", "simple"
    else:
        k = rng.randrange(len(_TEMPLATES[slot.task_type]))
        base = _TEMPLATES[slot.task_type][k].format(term=term, term2=term2)
        frames = _COMPLEXITY_FRAMES[slot.complexity]
        f = rng.randrange(len(frames))
        instruction = frames[f].format(instruction=base, term=term)
        template, complexity = f"{slot.task_type}:{k}/{slot.complexity}:{f}", slot.complexity
    c = rng.randrange(len(_CONTEXT_FRAMES))
    prompt = _CONTEXT_FRAMES[c].format(instruction=instruction, passage=passage)
    chunk_id = extra.get("chunk_id", f"chunk{slot.chunk}")
    provenance = {
        "prompt_id": f"{chunk_id}/{i}", "instruction": instruction,
        "task_type": "negative" if negative else slot.task_type if not edge_case else "edge_case",
        "category": "negative" if negative else slot.task_type if not edge_case else edge_case,
        "complexity": complexity, "template": f"{template}|context:{c}", "negative": negative,
        "edge_case": edge_case, "reference": reference, "source_doc": extra.get("doc_id"),
        "source_chunk": chunk_id, "source_text": passage, "synthetic": True,
        "generator": backend.model if backend is not None and template == "model" else "template",
    }
    return {"messages": [message("user", prompt)], "tools": None, EXTRA: dump_extra(provenance)}


def _foreign_term(chunk: int, texts, terms, rng) -> str:
    """A key term of another chunk that this chunk never mentions (or a fixed unrelated topic)."""
    own = texts[chunk].lower()
    candidates = [t for j, ts in enumerate(terms) if j != chunk for t in ts if t.lower() not in own]
    if candidates:
        return rng.choice(sorted(set(candidates)))
    for fallback in ("the 1987 municipal budget", "the mayor's dog", "quantum chromodynamics"):
        if fallback.split()[-1] not in own:
            return fallback
    return "an unrelated topic"


def _drop_near_duplicates(rows: list[dict[str, Any]], threshold: float) -> tuple[list[dict[str, Any]], int]:
    """Drop prompts whose instruction near-duplicates an earlier one of the same chunk."""
    kept: list[dict[str, Any]] = []
    seen: dict[str, list[set]] = {}
    removed = 0
    for row in rows:
        extra = load_extra(row[EXTRA])
        shingles = word_shingles(extra["instruction"])
        group = seen.setdefault(extra["source_chunk"], [])
        if any(jaccard(shingles, other) >= threshold for other in group):
            removed += 1
            continue
        group.append(shingles)
        kept.append(row)
    return kept, removed


def instructions_to_dir(source: str | os.PathLike, out_dir: str | os.PathLike, *, format: str = "mt_bench",
                        container: str = "jsonl", size: int = 1500, overlap: int = 150, unit: str = "chars",
                        tokenizer: str | None = None, per_chunk: int = 3, backend: Backend | None = None,
                        resume: bool = False, **options: Any) -> InstructionsResult:
    """Ingest ``source`` (files or a directory) and write prompts for its chunks into ``out_dir``.

    Writes ``prompts.<container>`` as ``format`` (prompt-only, since the prompts have no reply
    yet), every prompt with its provenance (``source_doc``, ``source_chunk``, ``source_text``,
    ``task_type``, ``category``, ``complexity``, ``generator``, ``synthetic: true``), and
    ``summary.json`` (what was ingested, the mix made, what was dropped). With a ``backend``
    the model writes the instructions through the runner, checkpointed in ``out_dir``.

    Args:
        size, overlap, unit, tokenizer: chunking, as :func:`~hubtools.generate.ingest.ingest`.
        options: passed to :func:`generate_instructions` (``task_mix``, ``negative_ratio``,
            ``seed``, runner options such as ``concurrency`` and ``progress``).

    Raises:
        UnknownFormatError: ``format`` is not one of :data:`PROMPT_FORMATS`.
        InputUnusableError: nothing with text was found under ``source``.

    Example:
        >>> instructions_to_dir("docs/", "prompts/", per_chunk=4).summary["prompts"]  # doctest: +SKIP
    """
    fmt = get_format(format)
    if fmt.name not in PROMPT_FORMATS:
        raise UnknownFormatError(f"{fmt.name} cannot hold prompts that have no reply yet",
                                 hint=f"use --format {' or '.join(PROMPT_FORMATS)}; the replies come with "
                                      "`hubtools generate responses`")
    out = Path(out_dir)
    target = out / f"prompts.{container}"
    container_for_path(target)  # an unknown file type fails now, not after a model wrote the instructions
    chunks = ingest(source, size=size, overlap=overlap, unit=unit, tokenizer=tokenizer)
    result = generate_instructions(chunks.dataset, per_chunk=per_chunk, backend=backend, out_dir=out,
                                   resume=resume, **options)
    # one set: the prompts and the summary that describes them arrive together or not at all (the
    # checkpoint stays where it is); prompts of another container from an earlier run go
    with output_set(out, replaces=[f"prompts.{c}" for c in CONTAINERS]) as stage:
        # prompt-only records: the user turn is the whole record (mt_bench reads back as kind prompt)
        written = write(result.dataset.rename_column("messages", "prompt"), stage / target.name, format=fmt.name,
                        kind=Kind.PROMPT)
        if written.quarantined:  # mt_bench holds every prompt this module makes
            raise HubtoolsError(f"internal error: {written.quarantined} prompts could not be written as {fmt.name}",
                                hint="please report this with the source files")
        written.path = target
        result.summary = {**result.summary, "ingest": chunks.summary, "format": written.format,
                          "written": written.written,
                          "files": {"prompts": str(target), "summary": str(out / "summary.json")}}
        with atomic_write(stage / "summary.json") as fh:
            fh.write(orjson.dumps(result.summary, option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS) + b"\n")
    return result
