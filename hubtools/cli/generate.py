"""``hubtools endpoint check``, ``generate instructions|responses``, ``judge``, ``rank`` and ``crossval``.

Each command parses its options, calls one library function and prints a short summary (or
``--json``). Without ``--endpoint``/``--model`` the commands that can run offline say so in one
stderr line; ``generate responses`` cannot and says what it needs. Which credential goes to the
endpoint is decided in :mod:`hubtools.generate.credentials`: a Hugging Face token (``--token``,
``HF_TOKEN``, the saved login) only to Hugging Face hosts, any other endpoint only ``--api-key``
or ``HUBTOOLS_API_KEY`` (``OPENAI_API_KEY`` for api.openai.com). No key is ever printed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ._options import JsonOpt, PathArg, _errors, _print_json, _progress_enabled
from ._app import app

__all__ = ["endpoint_app", "generate_app"]

endpoint_app = typer.Typer(help="Check that an inference endpoint, model and token work before a long run.",
                           no_args_is_help=True, rich_markup_mode=None)
generate_app = typer.Typer(help="Generate synthetic data: instructions from documents, responses from prompts.",
                           no_args_is_help=True, rich_markup_mode=None)

EndpointOpt = Annotated[str | None, typer.Option(
    "--endpoint", "-e", help="OpenAI-compatible base URL, e.g. http://localhost:8000/v1 (vLLM, TGI, Ollama...). "
                             "Without it, --model is a local model folder or an HF Inference Providers id.")]
ModelOpt = Annotated[str | None, typer.Option(
    "--model", "-m", help="Model name at the endpoint, a local transformers model folder, or an HF Inference "
                          "Providers id.")]
TokenOpt = Annotated[str | None, typer.Option(
    "--token", help="Hugging Face token, sent only to Hugging Face hosts (default: HF_TOKEN or `hf auth login`). "
                    "Never printed.", show_default=False)]
ApiKeyOpt = Annotated[str | None, typer.Option(
    "--api-key", help="The --endpoint's own key (default: HUBTOOLS_API_KEY; OPENAI_API_KEY for api.openai.com). "
                      "Never printed.", show_default=False)]
ResumeOpt = Annotated[bool, typer.Option(
    "--resume", help="Continue the run found in --out: finished rows are not requested again.")]
OutOpt = Annotated[Path, typer.Option("--out", "-o", help="Output directory (created if missing).")]
ConcurrencyOpt = Annotated[int, typer.Option("--concurrency", "-c", min=1, help="Requests in flight at most.")]
ContainerOpt = Annotated[str, typer.Option(
    "--container", help="File type of the output: jsonl, json, csv or parquet.")]
InputFormatOpt = Annotated[str | None, typer.Option(
    "--format", "--input-format", "-f",
    help="Read the input as this format instead of detecting it (see `hubtools formats`); as in every command, "
         "--format names the input and --to the output.")]
SeedOpt = Annotated[int, typer.Option("--seed", help="Random seed (candidate j is sampled with seed + j).")]




PromptsFormatOpt = Annotated[str, typer.Option(
    "--to", "-t", help="Output format of the prompts: prompt-only, as they have no reply yet.")]
RepliesFormatOpt = Annotated[str, typer.Option(
    "--to", "-t", help="Output format of the records (see `hubtools formats`).")]
PairsFormatOpt = Annotated[str, typer.Option(
    "--to", "-t", help="Output format of the pairs (see `hubtools formats`).")]


def _backend(model: str | None, endpoint: str | None, token: str | None, api_key: str | None):
    from ..generate import make_backend

    return make_backend(model, endpoint=endpoint, token=token, api_key=api_key)


def _offline_note(what: str) -> None:
    typer.echo(f"note: no --endpoint/--model: {what}", err=True)


def _wrote(files: dict[str, str]) -> None:
    typer.echo("wrote " + ", ".join(files.values()))


def _counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{k} {v}" for k, v in counts.items()) or "none"


@endpoint_app.command("check")
def endpoint_check(
    endpoint: EndpointOpt = None,
    model: ModelOpt = None,
    token: TokenOpt = None,
    api_key: ApiKeyOpt = None,
    timeout: Annotated[float, typer.Option("--timeout", help="Seconds to wait for the answer.")] = 15.0,
    as_json: JsonOpt = False,
) -> None:
    """Send one tiny request (max_tokens=1) and say in one line whether endpoint, model and key work.

    Exit 0 when it answered, 1 with what is wrong and how to fix it (unreachable, key rejected
    or missing, unknown model with the ones served, timeout, rate limit, server error). The line
    names the credential sent (--api-key, HUBTOOLS_API_KEY, HF_TOKEN, none...), never its value.

    \b
    Example: hubtools endpoint check --endpoint http://localhost:8000/v1 --model my-model
    """
    from ..generate import check_endpoint

    result = check_endpoint(endpoint, model, token=token, api_key=api_key, timeout=timeout)
    if as_json:
        _print_json(result.to_dict())
    else:
        typer.echo(result.line())
    if not result.ok:
        raise typer.Exit(1)


@generate_app.command("instructions")
def instructions_command(
    source: Annotated[str, typer.Argument(help="A .txt/.md/.html/.pdf/.jsonl file or a directory of them.")],
    out: OutOpt,
    endpoint: EndpointOpt = None,
    model: ModelOpt = None,
    token: TokenOpt = None,
    api_key: ApiKeyOpt = None,
    resume: ResumeOpt = False,
    per_chunk: Annotated[int, typer.Option("--per-chunk", min=1, help="Prompts per chunk.")] = 3,
    chunk_size: Annotated[int, typer.Option("--chunk-size", min=1, help="Chunk length (in --unit).")] = 1500,
    overlap: Annotated[int, typer.Option("--overlap", min=0, help="What consecutive chunks share.")] = 150,
    unit: Annotated[str, typer.Option("--unit", help="chars or tokens.")] = "chars",
    negative_ratio: Annotated[float, typer.Option(
        "--negative-ratio", min=0, max=1, help="Share of questions the passage cannot answer.")] = 0.1,
    edge_ratio: Annotated[float, typer.Option(
        "--edge-ratio", min=0, max=1, help="Share of edge cases (strict formats, empty extractions).")] = 0.05,
    seed: SeedOpt = 0,
    concurrency: ConcurrencyOpt = 8,
    format: PromptsFormatOpt = "mt_bench",
    container: ContainerOpt = "jsonl",
    as_json: JsonOpt = False,
) -> None:
    """Chunk documents and write prompts for them: task types and complexities in a mix, negatives, edge cases.

    Writes DIR/prompts.<container> (each prompt with its passage and provenance: source_doc,
    source_chunk, task_type, category, complexity, generator, synthetic) and DIR/summary.json.
    With --endpoint/--model a model writes the instructions (checkpointed, --resume continues);
    without, they come from templates and the passage's key terms, offline.

    \b
    Example: hubtools generate instructions ../shared/corpus/llama_factory/wiki_demo.txt --out prompts/
    """
    from ..generate.instructions import instructions_to_dir

    with _errors():
        backend = _backend(model, endpoint, token, api_key)
        if backend is None:
            _offline_note("writing instructions from templates, an offline heuristic (no model involved)")
        result = instructions_to_dir(source, out, format=format, container=container, size=chunk_size,
                                     overlap=overlap, unit=unit, per_chunk=per_chunk, backend=backend, resume=resume,
                                     negative_ratio=negative_ratio, edge_ratio=edge_ratio, seed=seed,
                                     concurrency=concurrency, progress=_progress_enabled(as_json))
    s = result.summary
    if as_json:
        _print_json(s)
        return
    typer.echo(f"{s['ingest']['documents']} documents, {s['chunks']} chunks -> {s['prompts']} prompts by "
               f"{s['generator']} ({s['near_duplicates_removed']} near-duplicates dropped"
               + (f", {s['not_written']} not written" if s["not_written"] else "") + ")")
    typer.echo(f"  task types: {_counts(s['by_task_type'])}")
    typer.echo(f"  complexity: {_counts(s['by_complexity'])}; negatives {s['negatives']}, "
               f"edge cases {sum(s['edge_cases'].values())}")
    _wrote(s["files"])


@generate_app.command("responses")
def responses_command(
    prompts: PathArg,
    out: OutOpt,
    n: Annotated[int, typer.Option("--n", "-n", min=1, help="Candidates per prompt and model.")] = 1,
    endpoint: EndpointOpt = None,
    model: Annotated[list[str] | None, typer.Option(
        "--model", "-m", help="Model name at the endpoint, a local transformers model folder, or an HF Inference "
                              "Providers id; repeat for candidates from several models.")] = None,
    token: TokenOpt = None,
    api_key: ApiKeyOpt = None,
    resume: ResumeOpt = False,
    temperature: Annotated[float, typer.Option("--temperature", min=0)] = 0.7,
    top_p: Annotated[float, typer.Option("--top-p", min=0, max=1)] = 0.95,
    max_tokens: Annotated[int, typer.Option("--max-tokens", min=1, help="Longest reply, in tokens.")] = 512,
    seed: SeedOpt = 0,
    concurrency: ConcurrencyOpt = 8,
    format: RepliesFormatOpt = "openai",
    container: ContainerOpt = "jsonl",
    input_format: InputFormatOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Sample N candidate replies per prompt from one or more models, with the sampling settings recorded.

    PROMPTS is any dataset hubtools reads (e.g. DIR/prompts.jsonl from `generate instructions`;
    a trailing reply is dropped). Writes DIR/responses.<container> (prompt + one reply per record,
    provenance kept, plus model, candidate, sampling, synthetic), DIR/failures.jsonl when rows
    failed, DIR/summary.json (tokens, cost, retries), and checkpoints: a killed run continues
    with --resume and asks for no row twice. Needs --endpoint/--model or a local model folder.

    \b
    Example: hubtools generate responses prompts/prompts.jsonl --out responses/ --n 2 --endpoint http://localhost:8000/v1 --model my-model
    """
    from ..generate.responses import Sampling, responses_to_dir

    with _errors():
        backends = [b for b in (_backend(m, endpoint, token, api_key) for m in (model or [None])) if b is not None]
        result = responses_to_dir(prompts, out, backends, n=n, format=format, container=container,
                                  input_format=input_format, resume=resume, concurrency=concurrency,
                                  sampling=Sampling(temperature=temperature, top_p=top_p, max_tokens=max_tokens,
                                                    seed=seed),
                                  progress=_progress_enabled(as_json))
    s = result.summary
    if as_json:
        _print_json(s)
        return
    runs = s["runs"]
    typer.echo(f"{s['prompts']} prompts x {n} candidates x {len(s['models'])} model(s) = {s['expected']} expected: "
               f"{s['candidates']} written, {s['failed']} failed"
               + (" (see failures.jsonl)" if s["failed"] else ""))
    typer.echo(f"  models: {', '.join(s['models'])}; resumed {sum(r['resumed_from_checkpoint'] for r in runs)}, "
               f"generated {sum(r['generated'] for r in runs)}, requests {sum(r['requests'] for r in runs)}, "
               f"tokens {sum(r['usage']['total_tokens'] for r in runs):,}")
    _wrote(s["files"])


app.add_typer(endpoint_app, name="endpoint")
app.add_typer(generate_app, name="generate")

@app.command()
def judge(
    path: PathArg,
    out: OutOpt,
    endpoint: EndpointOpt = None,
    model: ModelOpt = None,
    token: TokenOpt = None,
    api_key: ApiKeyOpt = None,
    resume: ResumeOpt = False,
    pairwise: Annotated[bool, typer.Option(
        "--pairwise", help="Also compare the candidates of each prompt in both orders (win rates).")] = False,
    concurrency: ConcurrencyOpt = 8,
    format: RepliesFormatOpt = "openai",
    container: ContainerOpt = "jsonl",
    input_format: InputFormatOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Score every reply on helpfulness, correctness (groundedness), safety and instruction following.

    Writes DIR/judged.<container> (the records with their scores, rationales and a
    length-controlled overall score in the `judge` column, provenance kept) and
    DIR/summary.json. With --endpoint/--model a model judges (checkpointed, --resume
    continues); without, the offline heuristic judge scores text features.

    \b
    Example: hubtools judge responses/responses.jsonl --out judged/
    """
    from ..judge.dataset import judge_file
    from ..judge.llm import make_judge

    with _errors():
        backend = _backend(model, endpoint, token, api_key)
        if backend is None:
            _offline_note("scoring with the offline heuristic judge (text features, not a model)")
        chosen = make_judge(backend, out_dir=out, resume=resume, concurrency=concurrency,
                            progress=_progress_enabled(as_json))
        result = judge_file(path, out, chosen, pairwise=pairwise, format=format, container=container,
                            input_format=input_format, progress=_progress_enabled(as_json))
    s = result.summary
    if as_json:
        _print_json(s)
        return
    typer.echo(f"judged {s['scored']} of {s['records']} replies with {s['judge']['judge']}: mean overall "
               f"{s['mean_overall']} (length-controlled {s['mean_overall_lc']})"
               + (f"; {s['unscored']} unscored" if s["unscored"] else "")
               + (f"; {s['no_reply']} without a reply" if s["no_reply"] else ""))
    typer.echo(f"  by criterion: {_counts(s['mean_by_criterion'])}")
    if "pairwise" in s:
        typer.echo(f"  pairwise: {s['pairwise']['judged']} pairs, position consistency "
                   f"{s['pairwise']['position_consistency_rate']}")
    _wrote(s["files"])

@app.command()
def rank(
    path: PathArg,
    out: OutOpt,
    strategy: Annotated[str, typer.Option(
        "--strategy", "-s", help="best_vs_worst, all_pairs or threshold.")] = "best_vs_worst",
    min_margin: Annotated[float, typer.Option(
        "--min-margin", help="Smallest score difference that makes a pair (ties never do).")] = 1.0,
    threshold: Annotated[float, typer.Option(
        "--threshold", help="For --strategy threshold: the score a chosen reply needs.")] = 7.0,
    score: Annotated[str, typer.Option(
        "--score", help="Judge score to rank by: overall, overall_lc or win_rate.")] = "overall",
    format: PairsFormatOpt = "trl",
    container: ContainerOpt = "jsonl",
    input_format: InputFormatOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Pair judged candidates of each prompt into chosen/rejected preference data, with margins.

    Reads the output of `hubtools judge`. Writes DIR/pairs.<container> (prompt, chosen,
    rejected, both scores, margin and provenance) and DIR/summary.json (strategy, judge,
    ties and pairs below the margin dropped), which `hubtools push --provenance` reads.

    \b
    Example: hubtools rank judged/judged.jsonl --out pairs/ --strategy best_vs_worst --min-margin 1
    """
    from ..judge.rank import rank_file

    with _errors():
        result = rank_file(path, out, strategy=strategy, min_margin=min_margin, threshold=threshold, score=score,
                           format=format, container=container, input_format=input_format,
                           progress=_progress_enabled(as_json))
    s = result.summary
    if as_json:
        _print_json(s)
        return
    margin = s["margin"]
    typer.echo(f"{s['strategy']} over {s['prompts']} prompts judged by {s['judge']}: {s['pairs']} pairs"
               + (f" (margin {margin['min']}-{margin['max']}, mean {margin['mean']})" if margin else ""))
    typer.echo(f"  dropped: {s['ties_dropped']} ties, {s['below_margin_dropped']} below margin {s['min_margin']:g}, "
               f"{s['single_candidate']} prompts with one candidate"
               + (f", {s['no_split_at_threshold']} with nothing on one side of the threshold"
                  if s["no_split_at_threshold"] else ""))
    _wrote(s["files"])

@app.command()
def crossval(
    synthetic: Annotated[str, typer.Argument(help="The synthetic dataset (SFT replies or preference pairs).")],
    gold: Annotated[str, typer.Argument(help="Human-written gold examples, any format hubtools reads.")],
    out: OutOpt,
    endpoint: EndpointOpt = None,
    model: ModelOpt = None,
    token: TokenOpt = None,
    api_key: ApiKeyOpt = None,
    resume: ResumeOpt = False,
    categories: Annotated[str, typer.Option(
        "--categories", help="provenance (recorded category, else classified) or classify (both sets "
                             "classified the same way).")] = "provenance",
    concurrency: ConcurrencyOpt = 8,
    synthetic_format: Annotated[str | None, typer.Option(
        "--synthetic-format", help="Read SYNTHETIC as this format instead of detecting it.")] = None,
    gold_format: Annotated[str | None, typer.Option(
        "--gold-format", help="Read GOLD as this format instead of detecting it.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Compare synthetic data with human gold data and flag hallucination-prone records for review.

    Reports the synthetic-to-human ratio, judge scores and win rates, token F1 and ROUGE-L on
    shared prompts, groundedness, all per category, and the categories prone to
    hallucination. Writes DIR/summary.json and DIR/flags.jsonl (numbers, dates, citations,
    low groundedness, disagreement with gold, per record), which the review queue puts first.

    \b
    Example: hubtools crossval pairs/pairs.jsonl ../shared/corpus/llama_factory/alpaca_en_demo.json --out crossval/
    """
    from ..judge.crossval import crossval_files
    from ..judge.llm import make_judge

    with _errors():
        backend = _backend(model, endpoint, token, api_key)
        if backend is None:
            _offline_note("judging with the offline heuristic judge (text features, not a model)")
        chosen = make_judge(backend, out_dir=out, resume=resume, concurrency=concurrency,
                            progress=_progress_enabled(as_json))
        result = crossval_files(synthetic, gold, out, judge=chosen, synthetic_format=synthetic_format,
                                gold_format=gold_format, categories=categories,
                                progress=_progress_enabled(as_json))
    data = result.to_dict()
    if as_json:
        _print_json(data)
        return
    o = data["overall"]
    typer.echo(f"{data['synthetic_records']} synthetic vs {data['gold_records']} gold records "
               f"(ratio {data['synthetic_to_human_ratio']}), judge {data['judge']['judge']}")
    if o["score_win_rate"] is not None:
        typer.echo(f"  scores: synthetic {o['synthetic_score']}, gold {o['gold_score']}; synthetic outscores "
                   f"gold {o['score_win_rate']:.0%} of the time")
    if o["shared_prompts"]:
        typer.echo(f"  {o['shared_prompts']} shared prompts: win rate {o['win_rate']} (length-controlled "
                   f"{o['win_rate_lc']}), token F1 {o['token_f1']}, ROUGE-L {o['rouge_l']}")
    for name, c in data["per_category"].items():
        if c["synthetic"]:
            typer.echo(f"  {name}: {c['synthetic']} synthetic / {c['gold']} gold, score {c['synthetic_score']} "
                       f"vs {c['gold_score']}, {c['flagged']} flagged"
                       + ("  [hallucination-prone]" if c["hallucination_prone"] else ""))
    gold_only = [name for name, c in data["per_category"].items() if not c["synthetic"]]
    if gold_only:
        typer.echo(f"  no synthetic records in: {', '.join(gold_only)}")
    own = {k: v for k, v in data["flags"].items() if k != "risky_category"}
    typer.echo(f"flagged {data['flagged_records']} records for review: "
               f"{data['hallucination_prone_records']} with hallucination-prone content"
               + (f" ({_counts(own)})" if own else "")
               + (f", {data['flags']['risky_category']} in a hallucination-prone category"
                  if data["flags"].get("risky_category") else ""))
    _wrote(data["files"])
