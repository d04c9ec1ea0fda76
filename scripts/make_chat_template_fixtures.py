"""Render the vendored chat templates (tests/fixtures/chat-templates/*.jinja) with transformers'
`apply_chat_template(..., tokenize=False, add_generation_prompt=True)` and write what it gives
to tests/fixtures/chat-templates/expected.json, which tests/chat_template.rs compares with
mgrpo's minijinja rendering.

    python3 -m venv /tmp/venv && /tmp/venv/bin/pip install torch transformers
    /tmp/venv/bin/python scripts/make_chat_template_fixtures.py
"""
import json
import pathlib

import transformers
from transformers import PreTrainedTokenizerFast

ROOT = pathlib.Path(__file__).resolve().parent.parent
DIR = ROOT / "tests/fixtures/chat-templates"
# any tokenizer will do: the templates are rendered to text, only bos/eos strings are read
TOKENIZER = ROOT / "tests/fixtures/gqa4-untied-bf16-t5/tokenizer.json"
SPECIALS = {
    "qwen2.5-instruct": ("<|endoftext|>", "<|im_end|>"),
    "qwen2.5-math-instruct": ("<|endoftext|>", "<|im_end|>"),
    "r1-distill-qwen": ("<｜begin▁of▁sentence｜>", "<｜end▁of▁sentence｜>"),
    # Qwen3 has no BOS token and its template prints none
    "qwen3": ("<|endoftext|>", "<|im_end|>"),
}
Q = "What is $2+3$? Put the answer in \\boxed{} and mind {question} braces — ünïcode."
CONVERSATIONS = {
    "user": [{"role": "user", "content": Q}],
    "system_and_user": [
        {"role": "system", "content": "You are a careful mathematician."},
        {"role": "user", "content": Q},
    ],
    "second_user_turn": [
        {"role": "user", "content": Q},
        {"role": "assistant", "content": "<think>\n2+3=5\n</think>\n\nIt is \\boxed{5}."},
        {"role": "user", "content": "Review your answer and correct it if needed."},
    ],
}


def main():
    cases = []
    for name, (bos, eos) in SPECIALS.items():
        template = (DIR / f"{name}.jinja").read_text()
        tok = PreTrainedTokenizerFast(tokenizer_file=str(TOKENIZER), bos_token=bos, eos_token=eos)
        tok.chat_template = template
        for conv_name, messages in CONVERSATIONS.items():
            text = tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
            cases.append({"template": name, "conversation": conv_name, "messages": messages,
                          "bos_token": bos, "eos_token": eos, "rendered": text})
    out = {"transformers": transformers.__version__, "cases": cases}
    (DIR / "expected.json").write_text(json.dumps(out, indent=1, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main()
