"""schemas/: every example validates with `jsonschema` and is accepted token by token (SmolLM2
tokenizer, canonical tokenization) by the compiled grammar; the same for the .lark examples.
Also a token-level pass over a few JSON-Schema-Test-Suite files."""
import glob
import json
import os

import jsonschema
import pytest

from grammar import GrammarCompiler, GrammarError, allocate_bitmask
from shared_data import data_path

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCHEMAS = sorted(p for p in glob.glob(os.path.join(ROOT, "schemas", "*.json")) if not p.endswith(".example.json"))
LARKS = sorted(glob.glob(os.path.join(ROOT, "schemas", "*.lark")))
SUITE = data_path("json-schema-test-suite", "tests", "draft2020-12")
TOKEN_LEVEL_SUITE_FILES = ("required.json", "enum.json", "minimum.json", "maxLength.json", "prefixItems.json")


@pytest.fixture(scope="module")
def compiler(smollm2_vocab):
    return GrammarCompiler(smollm2_vocab)


def feed(grammar, token_ids, check_masks: bool = False) -> bool:
    """Accept the tokens one by one, then terminate; with check_masks, each step's bitmask must
    allow exactly the tokens accept_token takes (checked on the token fed)."""
    m = grammar.matcher()
    row = allocate_bitmask(1, grammar.vocab.size)[0] if check_masks else None
    for tid in token_ids:
        if row is not None:
            m.fill_bitmask(row)
            allowed = bool((int(row[tid // 32]) >> (tid % 32)) & 1)
        ok = m.accept_token(tid)
        if row is not None:
            assert allowed == ok, f"mask and accept_token disagree on token {tid}"
        if not ok:
            return False
    return m.can_terminate()


def test_every_schema_has_an_example_and_there_are_a_dozen():
    assert len(SCHEMAS) >= 12 and len(LARKS) >= 3
    for path in SCHEMAS + LARKS:
        stem = path.rsplit(".", 1)[0]
        assert glob.glob(stem + ".example.*"), f"{path} has no example"


@pytest.mark.parametrize("path", SCHEMAS, ids=os.path.basename)
def test_schema_example_validates_and_is_accepted_token_by_token(path, compiler, smollm2_tokenizer):
    schema = json.load(open(path))
    example = json.load(open(path.replace(".json", ".example.json")))
    cls = jsonschema.validators.validator_for(schema)
    cls(schema, format_checker=cls.FORMAT_CHECKER).validate(example)
    grammar = compiler.compile_json_schema(schema)
    for text in (json.dumps(example), json.dumps(example, indent=2), json.dumps(example, separators=(",", ":"))):
        ids = smollm2_tokenizer.encode(text, add_special_tokens=False)
        assert feed(grammar, ids, check_masks=text.startswith("{\n")), text


@pytest.mark.parametrize("path", LARKS, ids=os.path.basename)
def test_lark_example_is_accepted_token_by_token(path, compiler, smollm2_tokenizer):
    grammar = compiler.compile_lark(open(path).read())
    text = open(path.replace(".lark", ".example.txt")).read()
    assert feed(grammar, smollm2_tokenizer.encode(text, add_special_tokens=False), check_masks=True)
    assert not feed(grammar, smollm2_tokenizer.encode(text + "!", add_special_tokens=False))


@pytest.mark.skipif(not os.path.isdir(SUITE), reason="JSON-Schema-Test-Suite data not present")
@pytest.mark.parametrize("name", TOKEN_LEVEL_SUITE_FILES)
def test_suite_file_token_level(name, compiler, smollm2_tokenizer):
    """Token level agrees with byte level; invalid instances are never accepted."""
    for group in json.load(open(os.path.join(SUITE, name))):
        try:
            grammar = compiler.compile_json_schema(group["schema"])
        except GrammarError:  # unsupported keyword, or a schema no instance satisfies
            continue
        for t in group["tests"]:
            text = json.dumps(t["data"])
            by_tokens = feed(grammar, smollm2_tokenizer.encode(text, add_special_tokens=False))
            m = grammar.matcher()
            by_bytes = m.accept_bytes(text.encode()) and m.can_terminate()
            assert by_tokens == by_bytes, (group["description"], t["description"])
            assert t["valid"] or not by_tokens, (group["description"], t["description"])
