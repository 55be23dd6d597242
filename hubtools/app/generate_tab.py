"""Generate tab: raw content in, preference pairs out.

Upload documents (txt, md, html, pdf, jsonl) -> chunks (``ingest``) -> instructions in a chosen
mix of task types and complexities (``generate_instructions``, offline from templates unless the
model writes them) -> candidate responses from an endpoint or a local model
(``generate_responses``); or upload a prompt list (any shape ``hubtools.load`` reads as prompts:
Alpaca without output, ``{"prompt"}``, ``{"question"}``, chats ending on the user's turn, MT-Bench
``turns``, bare strings, ...), read in a child process like the Load tab's uploads, straight to the
responses (:func:`respond`) -> judge (the offline heuristic judge by default) and rank into pairs
(``rank``), which become the current dataset. Each session keeps one run folder per set of
inputs and settings, and every stage runs with ``resume=True``: pressing Generate again after a
failure or a cancel continues where it stopped.

Every handler is public: any visitor can call it with any endpoint. So the server's own token never
goes to an endpoint a visitor names (:func:`_access`): a custom endpoint gets only the key the visitor
typed; Hugging Face's inference routes get the visitor's sign-in, or the Space's ``HF_TOKEN`` only
where the operator allowed it (``HUBTOOLS_ALLOW_SERVER_TOKEN_FOR_INFERENCE``). In a Space, the
endpoint must be https on a public address or under ``HUBTOOLS_ALLOWED_ENDPOINTS``
(:class:`~hubtools.generate.endpoint_guard.EndpointGuard`), and every text shown is redacted of
every token the process knows.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from dataclasses import replace
from pathlib import Path
from typing import Any, NamedTuple

from ..convert import write, write_quarantine
from ..errors import BackendError, HubtoolsError
from ..generate import check_endpoint, make_backend
from ..generate.credentials import Credential, choose_credential, is_hf_endpoint
from ..generate.endpoint_guard import EndpointGuard
from ..generate.ingest import SUPPORTED, ingest
from ..generate.instructions import COMPLEXITIES, TASK_TYPES, generate_instructions
from ..generate.responses import generate_responses, prompt_messages
from ..judge.dataset import judge_dataset
from ..judge.heuristic import HeuristicJudge
from ..judge.llm import LLMJudge
from ..judge.rank import STRATEGIES, rank
from ..load import canonical_dataset, load
from ..records import EXTRA, load_extra
from ..redact import redact, remember
from ..shapes import last_user_text, reply_of
from .isolate import run_isolated
from .load_tab import _FILE_TYPES as FILE_TYPES
from .session import AppSettings, Session, problem, too_big, visitor, with_dataset, workdir

__all__ = ["GenerateScreen", "RankScreen", "build", "check_endpoint_status", "generate", "judge_and_rank", "respond"]

NO_BACKEND = ("**Responses need an endpoint or a local model.** The instructions were written offline from "
              "templates (that works without a network). To generate responses, give an OpenAI-compatible "
              "endpoint URL (vLLM, TGI, Ollama, an Inference Endpoint) with its model, or the folder of a local "
              "model, and press Generate again; then judge and rank them into pairs.")
NO_BACKEND_FOR_PROMPTS = ("**Responses need an endpoint or a local model.** Give an OpenAI-compatible endpoint URL "
                          "(vLLM, TGI, Ollama, an Inference Endpoint) with its model, or the folder of a local model, "
                          "and press Answer the prompt list again; then judge and rank the responses into pairs.")
_PROMPT_COLUMNS = ["#", "task type", "complexity", "instruction"]
_PAIR_COLUMNS = ["#", "prompt", "chosen score", "rejected score", "margin"]
HEURISTIC = "heuristic"
LLM = "llm"


class GenerateScreen(NamedTuple):
    """What a generation run shows (in the order of its output components)."""

    summary: str
    prompts: list[list[Any]]
    prompts_file: str | None
    candidates_file: str | None
    session: Session


class RankScreen(NamedTuple):
    """What judging and ranking show."""

    summary: str
    pairs: list[list[Any]]
    pairs_file: str | None
    session: Session


def _access(settings: AppSettings, endpoint: str | None, api_key: str | None,
            oauth_token: str | None) -> tuple[Credential, EndpointGuard | None]:
    """The credential a visitor's request may carry to ``endpoint``, and the endpoint rule it must pass.

    The policy is :func:`~hubtools.generate.credentials.choose_credential` without the process's
    environment: the typed key goes anywhere it is typed for; a Hugging Face token (the visitor's
    sign-in, else the Space's own when the operator allowed it) only to Hugging Face's hosts.
    """
    remember(api_key, oauth_token)
    if oauth_token:
        hf_token, source = oauth_token, "your Hugging Face sign-in"
    elif settings.allow_server_token_for_inference and settings.hf_token:
        hf_token, source = settings.hf_token, "the Space's HF_TOKEN (allowed by its operator)"
    else:
        hf_token, source = None, "none"
    credential = choose_credential(endpoint, api_key=api_key, api_key_source="the key you typed",
                                   hf_token=hf_token, hf_token_source=source, environment=False)
    return credential, EndpointGuard(settings.allowed_endpoints) if settings.space else None


def _backend(settings: AppSettings, endpoint: str | None, model: str | None, api_key: str | None,
             oauth_token: str | None):
    endpoint, model = (endpoint or "").strip() or None, (model or "").strip() or None
    if not endpoint and not model:
        return None
    if settings.space and not endpoint:  # a visitor does not load models from the server's disk
        if Path(model).is_absolute() or model.startswith((".", "~")) or Path(model).exists():
            raise BackendError(f"{model}: a folder on the server is not a model here", reason="refused",
                               hint="give an endpoint URL with its model, or a Hugging Face model id")
    credential, guard = _access(settings, endpoint, api_key, oauth_token)
    return make_backend(model, endpoint=endpoint, credential=credential, guard=guard)


def check_endpoint_status(settings: AppSettings, endpoint: str | None, model: str | None, api_key: str | None,
                          oauth_token: str | None = None) -> str:
    """One tiny request to the endpoint: does the URL, model and key work? (It names the credential sent.)"""
    if not (endpoint or "").strip():
        return ("No endpoint given: instructions are written offline; responses need an endpoint URL or a local "
                "model folder in **Model**.")
    endpoint = endpoint.strip()
    credential, guard = _access(settings, endpoint, api_key, oauth_token)
    result = check_endpoint(endpoint, (model or "").strip() or None, credential=credential, guard=guard)
    if result.reason == "auth":  # the CLI's flags mean nothing here
        result.fix = ("sign in with Hugging Face, or type a Hugging Face token in the key box"
                      if is_hf_endpoint(endpoint) else "type this endpoint's key in the key box")
    return redact(result.line())


def _cells(rows: list[list[Any]]) -> list[list[Any]]:
    return [[redact(v) if isinstance(v, str) else v for v in row] for row in rows]


def _run_dir(session: Session, files: list[str], settings: dict[str, Any]) -> tuple[Session, Path]:
    """This session's run folder for these inputs and settings: the same ones resume the same run."""
    digest = hashlib.sha256(json.dumps(settings, sort_keys=True).encode())
    for path in sorted(files):
        digest.update(Path(path).name.encode() + b"\0" + Path(path).read_bytes())
    return workdir(session, "runs", digest.hexdigest()[:16])


def generate(settings: AppSettings, files: list[str] | None, endpoint: str | None, model: str | None,
             api_key: str | None, model_writes_instructions: bool, task_types: list[str] | None, simple: float,
             multi_step: float, chain_of_thought: float, per_chunk: float, candidates: float, chunk_size: float,
             max_chunks: float, session: Session, progress: Any = None,
             oauth_token: str | None = None) -> GenerateScreen:
    """Ingest the uploaded content, write instructions, and (with a model) sample candidate responses."""
    screen = _generate(settings, files, endpoint, model, api_key, model_writes_instructions, task_types, simple,
                       multi_step, chain_of_thought, per_chunk, candidates, chunk_size, max_chunks, session,
                       progress, oauth_token)
    return screen._replace(summary=redact(screen.summary), prompts=_cells(screen.prompts))


def _generate(settings, files, endpoint, model, api_key, model_writes_instructions, task_types, simple, multi_step,
              chain_of_thought, per_chunk, candidates, chunk_size, max_chunks, session, progress,
              oauth_token) -> GenerateScreen:
    step = progress or (lambda *args, **kwargs: None)
    files = [f for f in (files or []) if f]
    if not files:
        return GenerateScreen(f"Upload documents first ({', '.join(SUPPORTED)}).", [], None, None, session)
    if not task_types:
        return GenerateScreen("Choose at least one task type.", [], None, None, session)
    mix = {"simple": simple, "multi_step": multi_step, "chain_of_thought": chain_of_thought}
    if sum(mix.values()) <= 0:
        return GenerateScreen("Give at least one complexity a weight above 0.", [], None, None, session)
    run_settings = {"endpoint": endpoint, "model": model, "model_writes": bool(model_writes_instructions),
                    "tasks": sorted(task_types), "mix": mix, "per_chunk": int(per_chunk), "n": int(candidates),
                    "size": int(chunk_size), "max_chunks": int(max_chunks)}
    session, run = _run_dir(session, files, run_settings)
    sources = run / "sources"
    sources.mkdir(exist_ok=True)
    for path in files:
        shutil.copyfile(path, sources / Path(path).name)
    try:
        backend = _backend(settings, endpoint, model, api_key, oauth_token)
        step(0.05, desc="Reading the documents")
        chunks = ingest(sources, size=int(chunk_size), overlap=max(int(chunk_size) // 10, 0))
        dataset = chunks.dataset.select(range(min(int(max_chunks), len(chunks.dataset))))
        step(0.15, desc="Writing instructions")
        prompts = generate_instructions(dataset, per_chunk=int(per_chunk), task_mix=dict.fromkeys(task_types, 1.0),
                                        complexity_mix=mix, backend=backend if model_writes_instructions else None,
                                        out_dir=run, resume=True, progress=progress is not None)
        write(prompts.dataset, run / "prompts.jsonl", format="openai", kind="sft")
        rows = [[i, e.get("task_type"), e.get("complexity"), (e.get("instruction") or "")[:200]]
                for i, e in enumerate(load_extra(r.get(EXTRA)) for r in prompts.dataset.select(
                    range(min(50, len(prompts.dataset)))))]
        s = prompts.summary
        text = (f"**{chunks.summary['documents']} documents → {len(dataset)} chunks"
                f"{f' (of {len(chunks.dataset)})' if len(dataset) < len(chunks.dataset) else ''} → "
                f"{s['prompts']} instructions** (written by {s['generator']}; {s['negatives']} negative examples, "
                f"{sum(s['edge_cases'].values())} edge cases, {s['near_duplicates_removed']} near-duplicates removed). "
                f"By task type: {', '.join(f'{k} {v}' for k, v in s['by_task_type'].items())}. "
                f"By complexity: {', '.join(f'{k} {v}' for k, v in s['by_complexity'].items())}.")
        if backend is None:
            return GenerateScreen(text + "\n\n" + NO_BACKEND, rows, str(run / "prompts.jsonl"), None, session)
        step(0.3, desc=f"Generating {int(candidates)} responses per instruction with {backend.model}")
        responses = generate_responses(prompts.dataset, [backend], n=int(candidates), out_dir=run, resume=True,
                                       progress=progress is not None)
        write(responses.dataset, run / "candidates.jsonl", format="openai", kind="sft")
    except HubtoolsError as exc:
        return GenerateScreen(problem("Generation stopped.", exc) + "\n\nWhat finished is kept: fix the problem "
                              "and press Generate again to continue.", [], None, None, session)
    text += _answered(responses.summary, "Generate")
    session = replace(session, candidates=str(run / "candidates.jsonl"))
    return GenerateScreen(text, rows, str(run / "prompts.jsonl"), str(run / "candidates.jsonl"), session)


def _answered(r: dict[str, Any], button: str) -> str:
    """What a responses run made, from its summary (``button`` runs it again)."""
    failed = f"; {r['failed']} failed (press {button} again to retry them)" if r["failed"] else ""
    return (f"\n\n**{r['candidates']} of {r['expected']} candidate responses** from {', '.join(r['models'])}"
            f"{failed}. Next: judge and rank them into pairs.")


def read_prompt_list(path: str, max_bytes: int | None = None) -> tuple[Any, str, dict[str, Any], list[Any]]:
    """Read a prompt list (run in a child process: :func:`~hubtools.app.isolate.run_isolated`).

    Returns the usable records as an Arrow table, their kind, the load summary and the quarantine.

    Raises:
        InputUnusableError: no record is usable (the top reasons with counts, and what would work),
            or the file is no dataset at all, or over ``max_bytes`` once decompressed.
    """
    loaded = load(path, max_bytes=max_bytes).ensure_usable()
    return loaded.dataset.with_format("arrow")[:], loaded.kind.value, loaded.summary(), loaded.quarantine


def respond(settings: AppSettings, prompts_file: str | None, endpoint: str | None, model: str | None,
            api_key: str | None, candidates: float, session: Session, progress: Any = None,
            oauth_token: str | None = None) -> GenerateScreen:
    """Sample candidate responses for an uploaded prompt list (no instructions are written)."""
    screen = _respond(settings, prompts_file, endpoint, model, api_key, candidates, session, progress, oauth_token)
    return screen._replace(summary=redact(screen.summary), prompts=_cells(screen.prompts))


def _respond(settings, prompts_file, endpoint, model, api_key, candidates, session, progress,
             oauth_token) -> GenerateScreen:
    step = progress or (lambda *args, **kwargs: None)
    if not prompts_file:
        return GenerateScreen("Upload a prompt list first.", [], None, None, session)
    refused = too_big(prompts_file, settings)
    if refused:
        return GenerateScreen(refused, [], None, None, session)
    n = max(int(candidates or 1), 1)
    run_settings = {"prompt_list": True, "endpoint": endpoint, "model": model, "n": n}
    session, run = _run_dir(session, [prompts_file], run_settings)
    name = Path(prompts_file).name
    try:
        step(0.05, desc="Reading the prompt list")
        table, kind, summary, quarantine = run_isolated(read_prompt_list, prompts_file,
                                                        max_bytes=settings.max_upload_mb * 1024 * 1024)
        dataset = canonical_dataset(table, kind)
        prompts_out = str(run / "prompts.jsonl")  # the usable prompts, in their own format (it round-trips)
        write(dataset, prompts_out, format=summary["format"], kind=kind)
    except (HubtoolsError, OSError) as exc:
        return GenerateScreen(problem(f"Cannot use {name} as a prompt list.", exc), [], None, None, session)
    turns = [prompt_messages(r, kind) for r in dataset.select(range(min(50, len(dataset))))]
    rows = [[i, load_extra(r.get(EXTRA)).get("category") or "", "", (t[-1]["content"] if t else "")[-200:]]
            for i, (r, t) in enumerate(zip(dataset, turns))]
    text = f"**{name}: {summary['valid']} prompts** (`{summary['format']}`, {kind}; no instructions written)"
    if summary["quarantined"]:
        write_quarantine(run / "quarantine.jsonl", quarantine)
        codes = ", ".join(f"{code} {count}" for code, count in summary["by_code"].items())
        text += (f"; {summary['quarantined']} of {summary['total']} records kept out ({codes}): load the file in "
                 "the Load tab to see each one's reason")
    text += "."
    try:
        backend = _backend(settings, endpoint, model, api_key, oauth_token)
        if backend is None:
            return GenerateScreen(f"{text}\n\n{NO_BACKEND_FOR_PROMPTS}", rows, prompts_out, None, session)
        step(0.2, desc=f"Generating {n} responses per prompt with {backend.model}")
        responses = generate_responses(dataset, [backend], kind=kind, n=n, out_dir=run, resume=True,
                                       progress=progress is not None)
        write(responses.dataset, run / "candidates.jsonl", format="openai", kind="sft")
    except HubtoolsError as exc:
        return GenerateScreen(problem("Generation stopped.", exc) + "\n\nWhat finished is kept: fix the problem "
                              "and press Answer the prompt list again to continue.", rows, prompts_out, None, session)
    text += _answered(responses.summary, "Answer the prompt list")
    session = replace(session, candidates=str(run / "candidates.jsonl"))
    return GenerateScreen(text, rows, prompts_out, str(run / "candidates.jsonl"), session)


def judge_and_rank(settings: AppSettings, judge: str, endpoint: str | None, model: str | None, api_key: str | None,
                   strategy: str, min_margin: float, threshold: float, session: Session, progress: Any = None,
                   oauth_token: str | None = None) -> RankScreen:
    """Judge the candidates (heuristic judge unless asked for the model) and rank them into preference pairs."""
    screen = _judge_and_rank(settings, judge, endpoint, model, api_key, strategy, min_margin, threshold, session,
                             progress, oauth_token)
    return screen._replace(summary=redact(screen.summary), pairs=_cells(screen.pairs))


def _judge_and_rank(settings, judge, endpoint, model, api_key, strategy, min_margin, threshold, session, progress,
                    oauth_token) -> RankScreen:
    step = progress or (lambda *args, **kwargs: None)
    if session.candidates is None:
        return RankScreen("Generate candidate responses first.", [], None, session)
    run = Path(session.candidates).parent
    try:
        if judge == LLM:
            backend = _backend(settings, endpoint, model, api_key, oauth_token)
            if backend is None:
                return RankScreen("The LLM judge needs the endpoint or local model above; the heuristic judge "
                                  "needs nothing.", [], None, session)
            judge_impl = LLMJudge(backend, out_dir=run / "judge", resume=True, progress=progress is not None)
        else:
            judge_impl = HeuristicJudge()
        step(0.1, desc="Judging")
        judged = judge_dataset(load(session.candidates).dataset, judge_impl)
        step(0.8, desc="Ranking into pairs")
        ranked = rank(judged.dataset, strategy=strategy, min_margin=float(min_margin), threshold=float(threshold))
        pairs = run / "pairs.jsonl"
        written = write(ranked.dataset, pairs, format="trl", kind="preference")
    except HubtoolsError as exc:
        return RankScreen(problem("Judging stopped.", exc), [], None, session)
    j, s = judged.summary, ranked.summary
    label = ("**Heuristic judge** (offline: text features such as length, structure, overlap with the source; "
             "it does not read for meaning)" if judge != LLM else f"**LLM judge** ({j['judge'].get('judge')})")
    text = (f"{label}: {j['scored']} of {j['records']} responses scored, mean {j['mean_overall']}. "
            f"**{s['pairs']} pairs** ({s['strategy']}, min margin {s['min_margin']:g}) from {s['prompts']} prompts; "
            f"dropped: {s['ties_dropped']} ties, {s['below_margin_dropped']} below the margin, "
            f"{s['single_candidate']} prompts with one candidate.")
    rows = []
    for i, record in enumerate(ranked.dataset.select(range(min(50, len(ranked.dataset))))):
        prompt = last_user_text(reply_of(record, "preference")[0])
        rows.append([i, prompt[-160:], record["score_chosen"], record["score_rejected"],
                     round(record["score_chosen"] - record["score_rejected"], 3)])
    if written.written:
        provenance = {"judge": j["judge"].get("judge"), "strategy": s["strategy"], "min_margin": s["min_margin"]}
        session = with_dataset(session, pairs, name="generated pairs", kind="preference", format="trl",
                               records=written.written, provenance=provenance)
        session = replace(session, candidates=str(run / "candidates.jsonl"))
        text += " The pairs are now the **current dataset**: review them, check them, publish them."
    else:
        text += " No pair was made, so the current dataset is unchanged: lower the min margin or add candidates."
    return RankScreen(text, rows, str(pairs) if written.written else None, session)


def build(gr, settings: AppSettings, session_state) -> None:
    """Lay out the Generate tab and wire its events (inside a ``gr.Blocks`` context)."""
    gr.Markdown("Make preference pairs from your own documents. Instructions are written **offline** from "
                "templates; **responses need an endpoint or a local model**. Judging uses the offline heuristic "
                "judge unless you pick the model. Press Generate again to resume an interrupted run. "
                "Have prompts already? Upload the prompt list instead: it goes straight to the responses.")
    with gr.Row():
        files = gr.File(label=f"Documents ({', '.join(SUPPORTED)})", file_count="multiple", type="filepath",
                        file_types=list(SUPPORTED), elem_id="generate-files")
        prompt_list = gr.File(label="or a prompt list (Alpaca without output, prompt, question, chats ending on "
                                    "the user's turn, MT-Bench turns, one prompt a line; up to "
                                    f"{settings.max_upload_mb} MB)",
                              type="filepath", file_types=FILE_TYPES, elem_id="generate-prompt-list")
    with gr.Row():
        endpoint = gr.Textbox(label="Endpoint URL (OpenAI-compatible, optional)", placeholder="http://127.0.0.1:8000/v1",
                              elem_id="generate-endpoint")
        model = gr.Textbox(label="Model (served model id, or a local model folder)", elem_id="generate-model")
        api_key = gr.Textbox(label="Endpoint API key (optional)", type="password", elem_id="generate-api-key")
    with gr.Row():
        check = gr.Button("Check the endpoint", elem_id="generate-check")
        check_status = gr.Markdown(elem_id="generate-check-status")
    with gr.Accordion("Instructions", open=True):
        with gr.Row():
            task_types = gr.CheckboxGroup(list(TASK_TYPES), value=list(TASK_TYPES), label="Task types",
                                          elem_id="generate-task-types")
            model_writes = gr.Checkbox(label="Let the model write the instructions (default: templates, offline)",
                                       elem_id="generate-model-writes")
        with gr.Row():
            simple = gr.Slider(0, 10, value=5, step=1, label=f"Mix: {COMPLEXITIES[0]}", elem_id="generate-mix-simple")
            multi = gr.Slider(0, 10, value=3, step=1, label=f"Mix: {COMPLEXITIES[1]}",
                              elem_id="generate-mix-multi-step")
            cot = gr.Slider(0, 10, value=2, step=1, label=f"Mix: {COMPLEXITIES[2]}", elem_id="generate-mix-cot")
        with gr.Row():
            per_chunk = gr.Number(3, precision=0, minimum=1, label="Instructions per chunk",
                                  elem_id="generate-per-chunk")
            candidates = gr.Number(2, precision=0, minimum=1, label="Responses per instruction or prompt",
                                   elem_id="generate-candidates")
            chunk_size = gr.Number(1500, precision=0, minimum=200, label="Chunk size (characters)",
                                   elem_id="generate-chunk-size")
            max_chunks = gr.Number(50, precision=0, minimum=1, label="At most this many chunks",
                                   elem_id="generate-max-chunks")
    with gr.Row():
        run = gr.Button("Generate", variant="primary", elem_id="generate-run")
        answer = gr.Button("Answer the prompt list", variant="primary", elem_id="generate-answer-prompts")
    summary = gr.Markdown(elem_id="generate-summary")
    prompts = gr.Dataframe(headers=_PROMPT_COLUMNS, interactive=False, wrap=True, label="Prompts (first 50)",
                           elem_id="generate-prompts")
    with gr.Row():
        prompts_file = gr.File(label="prompts.jsonl", elem_id="generate-prompts-file")
        candidates_file = gr.File(label="candidates.jsonl", elem_id="generate-candidates-file")
    gr.Markdown("### Judge and rank into pairs")
    with gr.Row():
        judge = gr.Radio([("Heuristic judge (offline, text features: not a model)", HEURISTIC),
                          ("LLM judge (the model above)", LLM)], value=HEURISTIC, label="Judge",
                         elem_id="rank-judge")
        strategy = gr.Dropdown(list(STRATEGIES), value=STRATEGIES[0], label="Pairing strategy",
                               elem_id="rank-strategy")
        min_margin = gr.Number(1.0, minimum=0, label="Min score margin", elem_id="rank-min-margin")
        threshold = gr.Number(7.0, label="Threshold (strategy 'threshold')", elem_id="rank-threshold")
    rank_button = gr.Button("Judge and rank", variant="primary", elem_id="rank-run")
    rank_summary = gr.Markdown(elem_id="rank-summary")
    pairs = gr.Dataframe(headers=_PAIR_COLUMNS, interactive=False, wrap=True, label="Pairs (first 50)",
                         elem_id="rank-pairs")
    pairs_file = gr.File(label="pairs.jsonl", elem_id="rank-pairs-file")
    jobs = {"concurrency_id": "generate", "concurrency_limit": 1}
    check.click(visitor(gr, settings, check_endpoint_status), inputs=[endpoint, model, api_key],
                outputs=check_status, api_name="check_endpoint", concurrency_id="endpoint", concurrency_limit=2)
    run.click(visitor(gr, settings, generate),
              inputs=[files, endpoint, model, api_key, model_writes, task_types, simple, multi, cot, per_chunk,
                      candidates, chunk_size, max_chunks, session_state],
              outputs=[summary, prompts, prompts_file, candidates_file, session_state], api_name="generate", **jobs)
    answer.click(visitor(gr, settings, respond),
                 inputs=[prompt_list, endpoint, model, api_key, candidates, session_state],
                 outputs=[summary, prompts, prompts_file, candidates_file, session_state], api_name="answer_prompts",
                 **jobs)
    rank_button.click(visitor(gr, settings, judge_and_rank),
                      inputs=[judge, endpoint, model, api_key, strategy, min_margin, threshold, session_state],
                      outputs=[rank_summary, pairs, pairs_file, session_state], api_name="judge_rank", **jobs)
