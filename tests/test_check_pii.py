"""The ``pii`` check and :func:`redact`: planted PII of every type, near misses, real files."""

from __future__ import annotations

import json

import pyarrow as pa
import pytest

from hubtools.checks import REGISTRY, run_checks
from hubtools.checks.pii import TYPES, find_pii, redact, redact_array
from hubtools.errors import UnknownCheckError
from hubtools.load import load
from tests.fixtures.build import preference, sft, text, unpaired

PEM = ("-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7\n"
       "VJTUt9Us8cKjMzEfYyjiWA4R4/M2bS1GB4t7NXp98C3SC6dVMvDuictGeurT8jNbvJZHtCSuYEvu\n-----END PRIVATE KEY-----")

#: type -> (sentence, the raw value that must never show up in any output)
PLANTED: dict[str, list[tuple[str, str]]] = {
    "email": [
        ("Please send the signed invoice to jane.doe@gmail.com before Friday.", "jane.doe@gmail.com"),
        ("Our support team answers at help-desk+urgent@acme-corp.co.uk within a day.", "help-desk+urgent@acme-corp.co.uk"),
        ("Write to <m.rossi@unimi.it> if the link expires.", "m.rossi@unimi.it"),
    ],
    "phone": [
        ("Call me on +1 415 555 2671 after six.", "415 555 2671"),
        ("The front desk is (415) 555-2671, ask for Maria.", "555-2671"),
        ("Fax the form to 415.555.2671 today.", "415.555.2671"),
        ("Toll free: 1-800-555-0199.", "800-555-0199"),
        ("Our London office: +44 20 7946 0958.", "7946 0958"),
        ("Ring 020 7946 0958 from inside the UK.", "020 7946 0958"),
        ("En France, appelez le +33 1 23 45 67 89 ou le 06 12 34 56 78.", "23 45 67 89"),
        ("Berlin: +49 30 12345678 (Mo-Fr).", "12345678"),
        ("WhatsApp +14155552671 works too.", "+14155552671"),
    ],
    "credit_card": [
        ("Charge it to my Visa 4539 1488 0343 6467, expiry 09/27.", "4539 1488 0343 6467"),
        ("The Mastercard on file is 5555-5555-5555-4444.", "5555-5555-5555-4444"),
        ("Amex 3782 822463 10005 was used for the booking.", "3782 822463 10005"),
        ("Discover 6011 1111 1111 1117 is the backup card.", "6011 1111 1111 1117"),
        ("Card number 4012888888881881, CVV 123.", "4012888888881881"),
    ],
    "iban": [
        ("Wire the deposit to DE89 3704 0044 0532 0130 00, reference 42.", "3704 0044 0532 0130"),
        ("My UK account is GB82WEST12345698765432.", "GB82WEST12345698765432"),
        ("Rent goes to FR14 2004 1010 0505 0001 3M02 606 each month.", "2004 1010 0505 0001 3M02"),
        ("Dutch IBAN: NL91ABNA0417164300.", "NL91ABNA0417164300"),
    ],
    "ssn": [
        ("His social security number is 536-22-1984.", "536-22-1984"),
        ("SSN: 219 45 7812 (copy of the card attached).", "219 45 7812"),
    ],
    "ip_address": [
        ("The attacker connected from 93.184.216.34 at noon.", "93.184.216.34"),
        ("Use 8.8.4.4 as the secondary DNS server.", "8.8.4.4"),
        ("Our public IPv6 is 2001:4860:4860::8888.", "2001:4860:4860::8888"),
        ("Traffic came from 2a00:1450:4001:81c::200e overnight.", "2a00:1450:4001:81c::200e"),
    ],
    "secret": [
        ("My token is hf_QmVhYXJrZkx1Y2tyTmF0aW9uVGVzdEtleQ, keep it safe.", "hf_QmVhYXJrZkx1Y2tyTmF0aW9uVGVzdEtleQ"),
        ("export OPENAI_API_KEY=sk-proj-4fT9xQ2LmZ8vR1nB6yH3kW7cJ0sD5gP", "sk-proj-4fT9xQ2LmZ8vR1nB6yH3kW7cJ0sD5gP"),
        ("openai.api_key = 'sk-3Jx9Qm2Lr7Vt1Nc8Bz5Hw4Ky6Pd0Sf3Gh9Tj2Ua7Xe1Ri5Ob'",
         "sk-3Jx9Qm2Lr7Vt1Nc8Bz5Hw4Ky6Pd0Sf3Gh9Tj2Ua7Xe1Ri5Ob"),
        ("aws_access_key_id = AKIA2E0A8F3B244C9986", "AKIA2E0A8F3B244C9986"),
        ('aws_secret_access_key: "Xb9rT2mQ7vL1nK8pZ3wY6cH0jF5dS4gA2eR7uI9o"', "Xb9rT2mQ7vL1nK8pZ3wY6cH0jF5dS4gA2eR7uI9o"),
        ("git clone with ghp_R8nT2vX6bQ1mK9zL4wC7yH3jF5dS0gA2eP8u please", "ghp_R8nT2vX6bQ1mK9zL4wC7yH3jF5dS0gA2eP8u"),
        ("GITHUB_TOKEN=github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyzABCDEFGHIJ",
         "github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyzABCDEFGHIJ"),
        ("The bot uses xoxb-2417589306-5928374610293-Qw3Er5Ty7Ui9Op1As3Df5Gh to post.",
         "xoxb-2417589306-5928374610293-Qw3Er5Ty7Ui9Op1As3Df5Gh"),
        ("Maps key AIzaSyD3kF9mQ2xL7vR1nB6tH8wC0jZ5pY4gU3e in the config.", "AIzaSyD3kF9mQ2xL7vR1nB6tH8wC0jZ5pY4gU3e"),
        ("stripe.api_key = 'sk_live_51Hx9Qm2Lr7Vt1Nc8Bz5Hw4Ky'", "sk_live_51Hx9Qm2Lr7Vt1Nc8Bz5Hw4Ky"),
        ("curl -H 'Authorization: Bearer 7fK2mQ9xL4vR8nB1tH6wC3jZ0pY5gU2e' https://api.example.com",
         "7fK2mQ9xL4vR8nB1tH6wC3jZ0pY5gU2e"),
        ("Session: eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV",
         "SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV"),
        (f"Here is the server key:\n{PEM}\nDo not share it.", "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7"),
        ("DATABASE_URL=postgres://admin:Tr0ub4dor3xK@db.internal.example.com:5432/prod", "Tr0ub4dor3xK"),
    ],
}

#: Look like PII to a careless pattern, are not.
NEAR_MISSES = [
    "Her card 4539 1488 0343 6468 was declined because the number is wrong.",
    "The meeting is on 2023-10-15 at 10:30; the report is due 10/15/2023.",
    "Dates: 01.02.2023, 31.12.1999 and 05/06/2020.",
    "Upgrade to version 3.10.12, or pin v1.2.3.4 and Node 18.17.1.",
    "AssemblyVersion is version 1.0.0.0 and the build is release 2.4.1.9.",
    "It costs $1,234.56 or €1.299,00 per month, up from 100.00 (a 0.05% fee).",
    "ISBN 978-3-16-148410-0 and ISBN 0-306-40615-2 are both in the catalogue.",
    "Ping 10.0.0.999 to see how an invalid address is rejected.",
    "The router at 192.168.0.1 and localhost 127.0.0.1 are on the local network.",
    "Commit 3f786850e387550fdab836ed7e6dc881de23001b fixed it; md5 d41d8cd98f00b204e9800998ecf8427e.",
    "The IBAN DE89 3704 0044 0532 0130 01 has a bad checksum.",
    "Never issued: 000-12-3456, 666-12-3456, 912-34-5678 and 123-00-4567.",
    "Population 1,234,567,890 people and 1 000 000 dollars.",
    "The number 123-456-7890 is the usual placeholder, as is 4155552671 without dashes.",
    "The timestamp 1700000000000 and pi 3.14159265358979.",
    "The sum is:\n\n4212883012996",
    "472547338\n+960397912423686\n---------",
    "Use hf_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx as the placeholder token.",
    "pip install scikit-learn, not sk-learn-is-the-wrong-package-name-here.",
    "The AWS docs use AKIAIOSFODNN7EXAMPLE as their example access key.",
    "Set the header to Bearer YOUR_ACCESS_TOKEN_HERE_PLEASE.",
    "In C++, std::vector<int> and a::b::c are names; the time is 12:30:45.",
    "The MAC address is 00:1A:2B:3C:4D:5E.",
    "Retina images are named icon@2x.png by convention.",
    "Log in with ftp://username:password@ftp.example.com/pub.",
    "Table 1.2.3.4.5 lists the scores 98-76-54 and 12-34-5678.",
    "Give me a list of five fruits and explain photosynthesis in simple terms.",
]

ALL_SECRETS = [raw for rows in PLANTED.values() for _, raw in rows]


def _planted_rows():
    """(prompt, response) pairs: each planted sentence alone, alternating prompt and reply."""
    pairs, types = [], []
    for kind, rows in PLANTED.items():
        for i, (sentence, _) in enumerate(rows):
            pairs.append((sentence, "Sure, noted.") if i % 2 else ("Can you help with this?", sentence))
            types.append(kind)
    for sentence in NEAR_MISSES:
        pairs.append(("Please check this text.", sentence))
        types.append(None)
    return pairs, types


@pytest.fixture(scope="module")
def planted_result():
    pairs, types = _planted_rows()
    return REGISTRY["pii"].run(sft(pairs)), types


def test_every_planted_type_is_found_and_no_near_miss_is_flagged(planted_result):
    result, types = planted_result
    flagged = set(result.flagged)
    for kind in TYPES:
        rows = [i for i, t in enumerate(types) if t == kind]
        found = [i for i in rows if i in flagged and kind in result.reasons[i]]
        assert len(found) / len(rows) == 1.0, (kind, sorted(set(rows) - set(found)))
    false_flags = {i: result.reasons[i] for i, t in enumerate(types) if t is None and i in flagged}
    assert false_flags == {}
    assert result.stats["records_by_type"] == {k: len(v) for k, v in PLANTED.items()}
    assert result.stats["records_flagged"] == sum(len(v) for v in PLANTED.values())


def test_stats_count_by_type_field_and_secret_kind(planted_result):
    result, types = planted_result
    stats = result.stats
    # each planted sentence holds one value, except the French line (two phones)
    assert stats["matches_by_type"]["phone"] == len(PLANTED["phone"]) + 1
    assert stats["matches_by_type"]["secret"] == len(PLANTED["secret"])
    per_field = {"prompt": 0, "response": 0}
    for rows in PLANTED.values():
        for i in range(len(rows)):
            per_field["prompt" if i % 2 else "response"] += 1
    assert {k: v["records"] for k, v in stats["by_field"].items()} == per_field
    assert stats["secret_kinds"] == {
        "sk_api_key": 2, "hf_token": 1, "aws_access_key_id": 1, "aws_secret_key": 1, "github_token": 2,
        "slack_token": 1, "google_api_key": 1, "stripe_key": 1, "bearer_token": 1, "jwt": 1,
        "private_key": 1, "url_password": 1}
    assert result.reasons[types.index("credit_card")] == "pii: credit_card"
    assert set(stats["examples"]) == set(TYPES)
    assert all(len(v) <= 3 for v in stats["examples"].values())
    assert len(result.examples) == 3


def test_planted_values_never_appear_in_results_or_report_data(planted_result):
    result, _ = planted_result
    dumped = json.dumps(result.to_dict())
    leaked = [raw for raw in ALL_SECRETS if raw in dumped]
    assert leaked == []
    assert "[CREDIT_CARD]" in dumped and "[SECRET]" in dumped  # the examples are there, redacted
    pairs, _ = _planted_rows()
    quality = json.dumps(run_checks(sft(pairs), checks=["pii"]).to_dict())
    assert [raw for raw in ALL_SECRETS if raw in quality] == []


@pytest.mark.parametrize("source, expected", [
    ("Mail jane.doe@gmail.com or call +44 20 7946 0958.", "Mail [EMAIL] or call [PHONE]."),
    ("Card: 4539-1488-0343-6467, exp 09/27.", "Card: [CREDIT_CARD], exp 09/27."),
    ("(415) 555-2671, 536-22-1984 and 93.184.216.34!", "[PHONE], [SSN] and [IP_ADDRESS]!"),
    ("IBAN:GB82WEST12345698765432;", "IBAN:[IBAN];"),
    ("Authorization: Bearer 7fK2mQ9xL4vR8nB1tH6wC3jZ0pY5gU2e\nHost: api.example.com",
     "Authorization: Bearer [SECRET]\nHost: api.example.com"),
    (f"key:\n{PEM}\nthanks", "key:\n[SECRET]\nthanks"),
    ("postgres://admin:Tr0ub4dor3xK@db.example.com:5432/app", "postgres://admin:[SECRET]@db.example.com:5432/app"),
    ("nothing to see here, version 1.2.3.4", "nothing to see here, version 1.2.3.4"),
])
def test_redact_replaces_only_the_value(source, expected):
    assert redact(source)[0] == expected


def test_redact_counts_by_type_and_honours_types():
    line = "Mail jane.doe@gmail.com or call +44 20 7946 0958, token hf_QmVhYXJrZkx1Y2tyTmF0aW9uVGVzdEtleQ."
    assert redact(line)[1] == {"email": 1, "phone": 1, "secret": 1}
    assert redact(line, types=["email"]) == (
        "Mail [EMAIL] or call +44 20 7946 0958, token hf_QmVhYXJrZkx1Y2tyTmF0aW9uVGVzdEtleQ.", {"email": 1})
    with pytest.raises(UnknownCheckError, match="passport"):
        redact(line, types=["passport"])


def test_redaction_is_idempotent_and_leaves_clean_text_alone():
    for sentence, raw in (row for rows in PLANTED.values() for row in rows):
        once, counts = redact(sentence)
        assert raw not in once and counts
        assert redact(once) == (once, {})
    for sentence in NEAR_MISSES:
        assert redact(sentence) == (sentence, {})


def test_redact_array_matches_redact_and_keeps_nulls():
    sentences = [s for rows in PLANTED.values() for s, _ in rows] + NEAR_MISSES
    values = pa.array(sentences + [None])
    out, counts = redact_array(values)
    assert out.to_pylist() == [redact(s)[0] for s in sentences] + [None]
    total: dict[str, int] = {}
    for s in sentences:
        for k, v in redact(s)[1].items():
            total[k] = total.get(k, 0) + v
    assert counts == total
    clean = pa.chunked_array([NEAR_MISSES[:3], NEAR_MISSES[3:]])
    assert redact_array(clean) == (clean.combine_chunks(), {})


def test_overlapping_matches_keep_the_stronger_type():
    # the e-mail's local part is a valid US phone: one e-mail, no phone
    assert find_pii("write to 415-555-2671@example.com") == [(9, 33, "email", "email")]


def test_options_pick_types_fields_and_private_ips():
    ds = sft([("My mail is a.b@example.org", "Call +1 415 555 2671"), ("router 192.168.0.1", "ok")])
    spec = REGISTRY["pii"]
    assert spec.run(ds, spec.make_options({"types": ["phone"]})).reasons == {0: "pii: phone"}
    assert spec.run(ds, spec.make_options({"fields": ["prompt"]})).reasons == {0: "pii: email"}
    assert spec.run(ds).flagged == [0]
    assert spec.run(ds, spec.make_options({"private_ips": True})).reasons == {0: "pii: email, phone",
                                                                             1: "pii: ip_address"}
    with pytest.raises(UnknownCheckError, match="passport"):
        run_checks(ds, checks=["pii"], options={"pii": {"types": ["passport"]}})
    with pytest.raises(UnknownCheckError, match="chosen"):
        spec.run(ds, spec.make_options({"fields": ["chosen"]}))


def test_runs_on_every_kind():
    pref = REGISTRY["pii"].run(preference([("hi", "Hello!", "Sure, mail jane.doe@gmail.com"), ("q", "a", "b")]))
    assert pref.reasons == {0: "pii: email"}
    assert pref.stats["by_field"]["rejected"]["records"] == 1 and pref.stats["by_field"]["chosen"]["records"] == 0
    kto = REGISTRY["pii"].run(unpaired([("SSN 536-22-1984?", "no", False), ("q", "a", True)]))
    assert kto.reasons == {0: "pii: ssn"}
    raw = REGISTRY["pii"].run(text(["plain text", "key AKIA2E0A8F3B244C9986 leaked"]))
    assert raw.reasons == {1: "pii: secret"} and raw.stats["secret_kinds"] == {"aws_access_key_id": 1}


def test_real_hh_rlhf_personal_data(corpus):
    """Every flag here was read by a person: e-mails, phone numbers and an SSN the HH replies made up."""
    result = REGISTRY["pii"].run(load(corpus / "hh_rlhf" / "harmless_base_test.jsonl.gz").dataset)
    assert result.reasons == {248: "pii: email", 352: "pii: email", 460: "pii: phone", 476: "pii: email",
                              629: "pii: ssn", 653: "pii: email", 1107: "pii: phone", 1798: "pii: phone",
                              1811: "pii: phone", 2287: "pii: phone"}
    assert result.stats["by_field"]["prompt"]["records"] == 0


def test_real_alpaca_demo_emails_and_clean_files(corpus):
    alpaca = REGISTRY["pii"].run(load(corpus / "llama_factory" / "alpaca_en_demo.json").dataset)
    assert alpaca.reasons == {357: "pii: email", 434: "pii: email"}  # a contacts table, a regex exercise
    assert alpaca.stats["matches_by_type"]["email"] == 5
    for path in ("fastchat/dummy_conversation.json", "llama_factory/alpaca_zh_demo.json",
                 "llama_factory/kto_en_demo.json"):
        assert REGISTRY["pii"].run(load(corpus / path).dataset).flagged == [], path
