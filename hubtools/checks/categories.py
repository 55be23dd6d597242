"""``categories``: the task type of each prompt, and how well the dataset covers the intended ones.

Offline and deterministic: an ordered list of rules (RE2 regular expressions run by
``pyarrow.compute`` over the lower-cased opening of each prompt, 500 characters) assigns
each prompt the first category whose rule matches; a prompt no rule claims is
``open_conversation``. The order settles overlaps: "rewrite this function in Go" is code
before rewriting, "rewrite it in French" translation before rewriting, "give me 5 ideas for a
story" brainstorming before creative writing. Measured agreement: see tests/test_check_categories.py
(a hand-labelled set, MT-Bench's categories, Self-Instruct's classification tasks).

Coverage is a property of the dataset, so the check flags no record by default. Stats (what
``category_distribution.json`` holds): ``categories`` (count and share of every category),
``missing`` (intended, count 0), ``under_represented`` (intended, share below ``min_share``),
``total``, ``intended``, plus ``min_share`` (the bound used) and ``examples`` (up to 3
source indices per category). With ``flag_unintended`` (and an explicit ``intended`` list)
records whose category is outside the list are flagged as off-scope.

>>> classify(["Translate 'good night' into German.", "Write a haiku about rain."])
['translation', 'creative_writing']
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..records import Kind
from .base import CheckData, CheckResult, register

__all__ = ["CATEGORIES", "CategoryOptions", "assign", "check_categories", "classify", "count_partial", "merge_counts",
           "under_represented_bound"]

#: The task types, each with the one-line definition the report, cards and guidelines show.
CATEGORIES: dict[str, str] = {
    "qa": "A question asking for facts, explanations or advice (what/why/how, explain, describe, define).",
    "summarization": "Condense a given text into a shorter summary, key points or a TL;DR.",
    "code": "Write, explain, fix or convert source code, queries, scripts or regular expressions.",
    "reasoning_math": "Arithmetic, word problems, equations, proofs, logic puzzles and step-by-step reasoning.",
    "creative_writing": "Compose original text: stories, poems, songs, essays, emails, letters, posts, slogans.",
    "classification": "Assign a given input to one of a set of labels (sentiment, topic, spam, fact/opinion, yes/no).",
    "extraction": "Pull specific items (names, dates, entities, fields) out of a given text.",
    "rewriting": "Transform a given text, keeping its meaning: paraphrase, edit, correct, change tone or voice.",
    "brainstorming": "Generate a list of ideas, options, names, tips or suggestions.",
    "translation": "Render a text from one language into another.",
    "open_conversation": "Chit-chat, opinions, feelings and role-play; anything no other category claims.",
}
NAMES = list(CATEGORIES)
_CODE = {name: i for i, name in enumerate(NAMES)}

#: characters of each prompt the rules read
HEAD_CHARS = 500

_LANGS = (r"(?:english|french|spanish|german|italian|portuguese|chinese|mandarin|cantonese|japanese|korean|"
          r"russian|arabic|hindi|dutch|swedish|norwegian|danish|finnish|turkish|polish|greek|latin|hebrew|"
          r"vietnamese|thai|indonesian|bengali|urdu|persian|farsi|swahili|ukrainian|czech|romanian|hungarian|"
          r"another language|other languages?)")
_PROG = (r"(?:python|javascript|typescript|java|c\+\+|c#|golang|rust|ruby|php|swift|kotlin|scala|perl|haskell|"
         r"matlab|sql|mysql|postgres(?:ql)?|bash|powershell|html|css|react|node\.?js|django|flask|pandas|numpy|"
         r"jquery|vba|latex|regex)")
_CODE_NOUN = (r"(?:function|program|script|code|snippet|class|method|query|regex|regular expression|api|algorithm|"
              r"unit tests?|endpoint|shell command|command line|loop|recursion|website|web ?page|bug|compiler|"
              r"data structure|linked list|binary tree|hash ?map|sql|library|module)")
#: politeness and request framing before a task verb ("please", "can you", "i want you to", ...)
_PREFIX = (r"(?:(?:please|kindly|hey|hi|hello|ok|okay|now|so|also|then|first|next|finally)\W+)*"
           r"(?:(?:can|could|would|will) you(?: please)?\s+|i (?:want|need|would like|'d like)(?: you)? to\s+|"
           r"help me(?: to)?\s+|let's\s+|you (?:need|have|are asked|should) to\s+|your (?:task|job) is to\s+|"
           r"try (?:to )?|go ahead and\s+)?")
#: the task verb opens the prompt
_START = r"^\W*" + _PREFIX
#: the task verb opens a clause ("Given a sentence, classify ...")
_CLAUSE = r"(?:^|[.,;:!?\n]\s*)\W*" + _PREFIX
_NUMWORD = r"(?:\d|\b(?:one|two|three|four|five|six|seven|eight|nine|ten|twelve|twenty|hundred|half|twice|each)\b)"
_CREATIVE_NOUN = (r"(?:story|stories|poem|poems|poetry|haiku|limerick|sonnet|song|lyrics|rap|verses?|essay|blog|"
                  r"article|e-?mail|letter|speech|tweet|post|caption|script|screenplay|dialogue|conversation|"
                  r"monologue|joke|slogan|tagline|headline|title|description|review|paragraph|advertisement|"
                  r"ad copy|cover letter|bio|biography|character|scene|fable|fairy tale|tale|narrative|motto|"
                  r"toast|eulogy|invitation|announcement|press release|newsletter|jingle|riddle|metaphor|simile|"
                  r"analogy|sentence|opening line|plot|anecdote|quote|message|note|proverb|recipe|ode|ballad|"
                  r"text|reply|response|answer|outline|profile|summary of yourself)")
_IDEAS = (r"(?:ideas?|suggestions?|tips|ways|names|titles|activities|things|options|alternatives|strategies|"
          r"methods|topics|places|gifts?|uses|examples|reasons|questions|themes|destinations|hobbies|projects|"
          r"games|movies|books|snacks|recipes|dishes|resolutions)")
_PLAN = (r"(?:plan|schedule|itinerary|menu|budget|checklist|agenda|routine|syllabus|survey|quiz|curriculum|"
         r"to-?do list|list|workout|diet)")
_TEXT_NOUN = (r"(?:text|passage|paragraph|article|sentence|document|email|e-mail|review|story|essay|report|"
              r"transcript|message|letter|abstract|excerpt|conversation|dialogue|following|above|below|this)")

#: "how many ... 3" and "3 ... how many": reasoning_math's costliest branches (the bounded gaps
#: blow up RE2's DFA), so :data:`_PARTS` runs them only on heads with "how "
_HOW_NUMBER = (r"\bhow (?:many|much|long|far|old)\b[^\n]{0,120}" + _NUMWORD
               + r"|" + _NUMWORD + r"[^\n]{0,200}\bhow (?:many|much|long|far|old)\b")

#: (category, RE2 pattern on the lower-cased head), first match wins
RULES: list[tuple[str, str]] = [
    # code: fences, code syntax, a code verb with a code noun, a language with a code noun
    ("code", r"```|\bdef \w+\(|#include\s*<|\bpublic static\b|console\.log\(|\bfunction\s*\w*\s*\([^)]*\)\s*\{"
             r"|\bselect\b[^\n]{1,80}\bfrom\b[^\n]{0,80}(?:\bwhere\b|;)|</?(?:div|html|body|span|script|table)\b"
             r"|\bimport \w+(?:\.\w+)*\s*(?:\n|$)|\bint main\s*\("),
    ("code", _CLAUSE + r"(?:write|implement|create|generate|develop|build|code|fix|debug|refactor|optimi[sz]e|"
             r"complete|convert|translate|rewrite|modify|explain|comment|add comments|review|document|port|parse|"
             r"construct|design|make)\b"
             r"[^.?!\n]{0,60}\b" + _CODE_NOUN + r"s?\b"),
    ("code", r"\b(?:in|using|with|for|to) " + _PROG + r"\b|\b" + _PROG + r" (?:" + _CODE_NOUN + r"|code|program|script)\b"
             r"|\b(?:source code|this code|the code|following code|my code|code snippet|coding|programming|"
             r"time complexity|big[- ]o notation|linked list|binary (?:search )?tree|stack trace|syntax error|"
             r"compile|leetcode|pseudocode|sql query|regular expression|sorted (?:lists|arrays))\b"),
    # translation
    ("translation", _CLAUSE + r"translat(?:e|ing)\b|\btranslat(?:e|ion|ing)\b[^\n]{0,80}\b(?:into|to|from|in)\s+"
                    r"(?:the\s+)?" + _LANGS + r"|\b" + _LANGS + r" translation\b|\bhow (?:do|would|can|should) "
                    r"(?:you|i|we) say\b[^\n]{0,80}\bin " + _LANGS
                    + r"|\b(?:render|put|convert|rewrite|say)\b[^\n]{0,60}\b(?:in|into) " + _LANGS + r"\b"),
    # extraction named by its verb
    ("extraction", _CLAUSE + r"(?:extract|pull out|pick out|find and list|parse out)\b"),
    # summarization
    ("summarization", r"\b(?:summari[sz](?:e|ing|ation)|summary|tl;?dr|sum up|sums up|synopsis|recap)\b"
                      r"|\b(?:key|main) (?:points|takeaways|ideas)\b[^\n]{0,40}\b(?:of|from|in) (?:the |this |that )?"
                      + _TEXT_NOUN + r"|" + _CLAUSE + r"condense\b"),
    # extraction
    ("extraction", r"\bextract|\bnamed entit|\b(?:list|find|identify|highlight|underline|return|get|output|name) "
                   r"(?:all|every|each|only)(?: of)? (?:the )?[\w -]{0,30}\b(?:in|from|mentioned in|that appear in|"
                   r"contained in|used in|of) (?:the|this|these|that|following|given|above|below)\b"
                   r"|\bfrom (?:the|this) (?:following |given |above |below )?(?:text|passage|paragraph|article|"
                   r"document|email|review|table|data|recipe|description|sentence)s?\b[^\n]{0,30}\b(?:list|find|get|"
                   r"identify|extract|pull|return)\b|\b(?:in|as) (?:a )?json\b"),
    # classification
    ("classification", _CLAUSE + r"(?:classify|categori[sz]e|label|tag|(?:choose|select|pick) (?:the|one|which|between|from the "
                       r"following|an? (?:answer|option|label|category))|sort\b[^\n]{0,40}\binto|"
                       r"assign (?:a|the|each|one)\b[^\n]{0,20}\b(?:category|label|class))\b"
                       r"|\b(?:classify|classification|categori[sz]e|which category|what category|which class|"
                       r"what genre|which genre|sentiment|positive or negative|positive, negative|spam or|"
                       r"true or false|true, false|yes or no|fact or (?:an )?opinion|formal or informal|sarcastic|"
                       r"on a scale of|multiple[- ]choice)\b"
                       r"|\b(?:identify|determine|decide|tell(?: me)?|detect|predict|judge|check|say|guess|verify) "
                       r"(?:whether|if)\b"
                       r"|\b(?:identify|determine|predict|detect|guess) the (?:sentiment|tone|emotion|intent|topic|"
                       r"genre|category|class|type|label|language|part of speech|pos tag|mood)\b"),
    # rewriting
    ("rewriting", _CLAUSE + r"(?:rewrite|re-write|rephrase|paraphrase|reword|edit|proofread|revise|correct|polish|"
                  r"replace|delete|remove|rearrange|reorder|insert|simplify (?:the|this|these|my)\b|shorten|make (?:this|it|the|my)\b[^\n]{0,30}\b(?:more|"
                  r"less|sound)|change (?:this|the|these)\b[^\n]{0,30}\b(?:sentence|text|tense|voice|tone)|"
                  r"(?:convert|turn|transform) (?:this|the|these|following|my|it)\b[^\n]{0,30}\b(?:sentence|text|"
                  r"paragraph|passage|statement)s?|improve (?:the|this|my) (?:sentence|text|paragraph|writing|essay|"
                  r"wording|grammar)|fix (?:the|any|all)? ?(?:grammar|spelling|punctuation|typos|errors))"
                  r"|\b(?:rewrite|re-write|rephrase|paraphrase|reword|proofread|grammatical errors?|grammar "
                  r"(?:mistakes|errors)|spelling (?:mistakes|errors)|passive voice|active voice|more formal|more "
                  r"concise|less formal|more polite|more professional|in your own words|in simpler (?:terms|words|"
                  r"language)|plain english|correct the grammar|gender[- ]neutral)\b"),
    # greetings, opinions and feelings
    ("open_conversation", r"^\W*(?:hi|hello|hey|hiya|yo|howdy|greetings|good (?:morning|afternoon|evening|night)|"
                          r"thanks|thank you|thx|bye|goodbye|see you|how are you|what'?s up|sup|nice to meet you)"
                          r"\b[^\n]{0,40}$"
                          r"|\b(?:what do you think|what's your (?:opinion|favorite|favourite|view|take)|what is your "
                          r"(?:opinion|favorite|favourite|view|take)|do you (?:like|love|think|believe|feel|prefer|"
                          r"ever|have (?:feelings|a favorite|friends))|how do you feel|are you (?:a |an )?(?:conscious|"
                          r"human|sentient|real|happy|alive|bot|robot|ai)\b|who are you|who (?:made|created|built|"
                          r"trained) you|what(?:'s| is) your name|tell me about yourself|i(?:'m| am) (?:feeling|so |"
                          r"sad|bored|lonely|tired|stressed|worried|anxious|depressed)|i feel\b|let's (?:talk|chat)|"
                          r"can we (?:talk|chat)|talk to me|chat with me|would you rather)\b"),
    # brainstorming: ideas, N ways, suggestions
    ("brainstorming", r"\bbrainstorm|\b(?:some|several|a few|a list of|\d+|three|four|five|six|seven|eight|nine|ten|"
                      r"twenty|more|possible|creative|fun|unique|new|good|different|catchy|interesting|other|best)"
                      r" (?:[\w-]+ )?" + _IDEAS + r"\b|\b(?:ideas|suggestions|tips|recommendations)\b"
                      r"|\b(?:ways to|ways of|how (?:can|could|do|should) (?:i|we)\b[^\n]{0,40}\b(?:better|more|less|"
                      r"improve|reduce|increase|save))\b"
                      r"|" + _CLAUSE + r"(?:make|create|write|generate|plan|design|prepare|draft|put together|"
                      r"come up with) (?:a |an |the |my |our )?(?:[\w-]+ ){0,3}" + _PLAN + r"\b"),
    # creative writing
    ("creative_writing", _CLAUSE + r"(?:write|compose|draft|create|craft|generate|make up|invent|tell|come up with|"
                         r"produce|pen|develop|design|construct|expand|continue|extend|turn|reply|respond)\b"
                         r"[^\n]{0,60}?\b" + _CREATIVE_NOUN + r"\b"
                         r"|\b(?:once upon a time|in the style of|rhyme|rhyming)\b|" + _CLAUSE + r"write (?:about|on)\b"
                         r"|" + _START + r"(?:complete|continue|finish|fill in)\b"
                         r"|" + _START + r"(?:write|generate|compose|create|make up|invent|draft|craft|produce)\b"
                         r"|^\W*describe (?:a|an|the) (?:[\w-]+,? ){0,4}(?:character|"
                         r"scene|setting|world|creature)"),
    # role-play
    ("open_conversation", r"\b(?:pretend (?:to be|you are|you're|that you|yourself)|act as|act like|role-?play|"
                          r"you are now|imagine (?:you are|you're|yourself)|play the role|take on the role|assume "
                          r"the role|embody|let's play|stay in character|from now on,? you)\b"
                          r"|^\W*(?:now,? )?you are (?:a|an)\b"),
    # reasoning and math
    ("reasoning_math", r"\d\s*[+*/×÷^]\s*\d|\d\s+[-x]\s+\d|\d\s*%|[a-z0-9)]\s*=\s*[a-z0-9(-]|\$\s*\d|√|∫|π"
                       r"|\b(?:linear|quadratic|cubic|differential|algebraic|simultaneous|following|this|these|the) equations?"
                       r"|\b(?:calculate|compute|solve|solving|arithmetic|algebra|geometry|trigonometry|"
                       r"calculus|theorem|prove that|proof|probability|percent(?:age)?|integral|derivative|"
                       r"divisible|prime numbers?|factorial|square root|cube root|remainder|lcm|gcd|greatest common|"
                       r"least common|riddle|puzzle|logic (?:puzzle|problem|question)|logically|syllogism|"
                       r"step[- ]by[- ]step|math|maths|mathematical|raised to|to the power|squared|cubed|perfect numbers?|average speed|sum to|"
                       r"(?:set|list|pair|sequence) of (?:integers|numbers)|the (?:value|sum|product|area|volume|"
                       r"perimeter|average|mean|median|ratio) of)\b"
                       r"|\bconvert(?:ing)?\b[^\n]{0,40}\b(?:measurement|units?|celsius|fahrenheit|kilomet|miles|"
                       r"pounds|kg|inches|cm|meters|feet|degrees|\d)"
                       r"|" + _HOW_NUMBER),
    # brainstorming by the opening verb
    ("brainstorming", _CLAUSE + r"(?:brainstorm|suggest|recommend|come up with|think of|propose|list|name some|"
                      r"add|generate (?:a list|some|\d+)|give me (?:some|\d+|a few|a list))\b"),
    # questions and explanations
    ("qa", r"\?|" + _START + r"(?:what|who|whom|whose|why|how|when|where|which|is|are|was|were|does|do|did|can|"
           r"could|would|will|should|has|have|had|explain|describe|define|tell me|name|list|give|compare|contrast|"
           r"discuss|outline|identify|state|provide|research|find|elaborate|clarify|analy[sz]e|evaluate|"
           r"determine|answer|rank|sort|order|arrange)\b"
           r"|" + _CLAUSE + r"(?:explain|describe|define|answer|identify|find|analy[sz]e)\b"),
]


def _parts(pattern: str) -> tuple[tuple[str | None, str], ...]:
    """How :func:`_codes` runs a rule: (prefilter, pattern) parts whose union is the rule. A
    prefilter is a cheap pattern every match of its part contains, so heads without it skip the
    part; bounded gaps (``[^\\n]{0,200}``) make these rules' DFA slow (reasoning_math alone
    was half of the check's time). Other rules run whole."""
    if pattern.endswith("|" + _HOW_NUMBER):  # reasoning_math: every branch but these is cheap
        return (None, pattern[: -len(_HOW_NUMBER) - 1]), ("how ", _HOW_NUMBER)
    if pattern.startswith(_CLAUSE + "(?:write|implement") and pattern.endswith(_CODE_NOUN + r"s?\b"):
        return ((_CODE_NOUN, pattern),)  # a code verb ... a code noun: needs the noun
    if pattern.startswith(_CLAUSE + "translat"):
        return (("translat|" + _LANGS, pattern),)  # every branch names translating or a language
    return ((None, pattern),)


_PARTS = {pattern: _parts(pattern) for _, pattern in RULES}


def _matches(values: pa.Array, pattern: str) -> np.ndarray:
    """Which ``values`` the rule ``pattern`` matches (by its :data:`_PARTS`)."""
    hit = np.zeros(len(values), dtype=bool)
    for prefilter, part in _PARTS.get(pattern, ((None, pattern),)):
        if prefilter is None:
            hit |= pc.match_substring_regex(values, part).to_numpy(zero_copy_only=False)
            continue
        rows = np.flatnonzero(~hit & pc.match_substring_regex(values, prefilter).to_numpy(zero_copy_only=False))
        if rows.size:
            hit[rows] |= pc.match_substring_regex(values.take(pa.array(rows)), part).to_numpy(zero_copy_only=False)
    return hit


def _codes(batch: dict[str, pa.Array], name: str) -> np.ndarray:
    """Category code (index into NAMES) of each prompt of a batch (module level: runs in workers)."""
    arr = batch[name]
    n = len(arr)
    codes = np.full(n, _CODE["open_conversation"], dtype=np.uint8)
    if n == 0:
        return codes
    head = pc.utf8_lower(pc.utf8_slice_codeunits(arr, 0, HEAD_CHARS))
    open_rows = np.ones(n, dtype=bool)
    for category, pattern in RULES:
        rows = np.flatnonzero(open_rows)
        if rows.size == 0:
            break
        subset = head if rows.size == n else head.take(pa.array(rows))
        hit = _matches(subset, pattern)
        won = rows[hit]
        codes[won] = _CODE[category]
        open_rows[won] = False
    return codes


def _assign_codes(data: CheckData) -> np.ndarray:
    name = data.prompt_fields[0]
    parts = data.map(_codes, [name], desc="categories", name=name)
    return np.concatenate(parts) if parts else np.zeros(0, dtype=np.uint8)


def count_partial(codes: np.ndarray, pos: np.ndarray, examples: int, allowed: list[int] | None) -> dict:
    """The mergeable figures of rows with category ``codes`` at positions ``pos`` (ascending):
    count per category, its first ``examples`` positions, and the rows outside ``allowed``
    (positions and codes). The Ray engine makes one per block and :func:`merge_counts` joins them."""
    off = np.zeros(len(codes), bool) if allowed is None else ~np.isin(codes, allowed)
    return {"counts": np.bincount(codes, minlength=len(NAMES)).astype(np.int64),
            "examples": {i: pos[codes == i][:examples] for i in np.unique(codes).tolist()},
            "off": (pos[off], codes[off])}


def merge_counts(parts: list[dict], examples: int) -> dict:
    """:func:`count_partial`'s figures of disjoint row sets joined (in any order: the positions decide)."""
    cats = {i for p in parts for i in p["examples"]}
    pos = np.concatenate([p["off"][0] for p in parts]) if parts else np.zeros(0, np.int64)
    codes = np.concatenate([p["off"][1] for p in parts]) if parts else np.zeros(0, np.uint8)
    order = np.argsort(pos, kind="stable")
    return {"counts": np.sum([p["counts"] for p in parts], axis=0) if parts else np.zeros(len(NAMES), np.int64),
            "examples": {i: np.sort(np.concatenate([p["examples"][i] for p in parts if i in p["examples"]]))[:examples]
                         for i in cats},
            "off": (pos[order], codes[order])}


def assign(data: CheckData) -> np.ndarray:
    """The category name of every row of ``data`` (a numpy array of str, row order).

    Example:
        >>> assign(CheckData.of(dataset))[:2]  # doctest: +SKIP
        array(['code', 'qa'], dtype='<U17')
    """
    data = CheckData.of(data)
    return np.array(NAMES)[_assign_codes(data)]


def classify(texts: list[str]) -> list[str]:
    """The category of each prompt text.

    >>> classify(["Summarize this article: ...", "hello there!"])
    ['summarization', 'open_conversation']
    """
    codes = _codes({"prompt": pa.array(list(texts), pa.string())}, "prompt")
    return [NAMES[c] for c in codes]


def under_represented_bound(n_intended: int) -> float:
    """The default share below which an intended category counts as under-represented:
    ``max(0.02, 0.5 / n_intended)``, half the share it would have if all were equally common."""
    return max(0.02, 0.5 / max(n_intended, 1))


@dataclass
class CategoryOptions:
    """Settings of the ``categories`` check."""

    #: the categories the dataset should cover (None: all of CATEGORIES)
    intended: list[str] | None = None
    #: share under which an intended category is under-represented (None: under_represented_bound)
    min_share: float | None = None
    #: flag records whose category is not intended (only with an explicit ``intended``)
    flag_unintended: bool = False
    #: source indices of examples kept per category for the report
    examples: int = 3


@register("categories", options=CategoryOptions,
          kinds=(Kind.SFT, Kind.PROMPT, Kind.PREFERENCE, Kind.UNPAIRED),
          description="task type of each prompt; missing and under-represented categories")
def check_categories(data: CheckData, opts: CategoryOptions) -> CheckResult:
    """Count prompts per task category and name the intended categories that are missing or rare.

    Raises:
        ValueError: ``intended`` names a category that does not exist.
    """
    intended = list(opts.intended) if opts.intended else list(NAMES)
    unknown = [c for c in intended if c not in CATEGORIES]
    if unknown:
        raise ValueError(f"unknown categor(ies) {unknown}; choose from: {', '.join(NAMES)}")
    allowed = [_CODE[c] for c in intended] if opts.flag_unintended and opts.intended else None
    aggregate = getattr(data, "aggregate", None)  # an engine that merges partial counts on its cluster (Ray)
    if aggregate is not None:
        merged = aggregate.categories(data.prompt_fields[0], opts.examples, allowed)
    else:
        codes = _assign_codes(data)
        merged = count_partial(codes, np.arange(len(codes)), opts.examples, allowed)
    counts = merged["counts"]
    total = len(data)
    bound = opts.min_share if opts.min_share is not None else under_represented_bound(len(intended))
    shares = counts / total if total else np.zeros(len(NAMES))
    stats = {
        "categories": {name: {"count": int(counts[i]), "share": round(float(shares[i]), 4)}
                       for i, name in enumerate(NAMES)},
        "missing": [c for c in intended if counts[_CODE[c]] == 0],
        "under_represented": [c for c in intended if 0 < shares[_CODE[c]] < bound],
        "total": total,
        "intended": intended,
        "min_share": round(bound, 4),
        "examples": {name: [int(data.index[p]) for p in merged["examples"][i]]
                     for i, name in enumerate(NAMES) if counts[i]},
    }
    flagged: list[int] = []
    reasons: dict[int, str] = {}
    for pos, code in zip(*merged["off"]):
        index = int(data.index[pos])
        flagged.append(index)
        reasons[index] = f"category {NAMES[code]} is not intended ({', '.join(intended)})"
    return CheckResult("categories", flagged=flagged, reasons=reasons, stats=stats,
                       versions={"pyarrow": pa.__version__})
