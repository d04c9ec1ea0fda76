#!/usr/bin/env python3
"""Make the Parquet and conversational dataset fixtures of tests/datasets.rs, the way the
Hugging Face Hub keeps datasets: `datasets.Dataset.to_parquet` (pyarrow underneath).

- tests/fixtures/data/parquet/gsm8k/data/: the first 16 rows of gsm8k_train.jsonl as two train
  shards (`train-00000-of-00002.parquet`: snappy, `datasets`' default; `train-00001-of-00002`:
  zstd, through pyarrow) and the first 4 rows of gsm8k_test.jsonl as a test shard, in the Hub's shard names.
- tests/fixtures/data/conversational.{jsonl,parquet}: the first 32 problems of the shipped
  model's task (model/task/train.jsonl) in TRL's conversational format: `prompt` a list of
  messages (a system message on every third row), `answer` the gold answer. Beside them,
  conversational_prompts.json: transformers' `apply_chat_template(prompt,
  add_generation_prompt=True)` of each row with the shipped model's tokenizer (the prompt mgrpo
  must render).

    .venv/bin/python scripts/make_parquet_fixtures.py
"""
import json
import os

import datasets
import pyarrow.parquet as pq
from transformers import AutoTokenizer

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
DATA = os.path.join(ROOT, "tests", "fixtures", "data")


def head(path, n):
    with open(path) as fh:
        return [json.loads(next(fh)) for _ in range(n)]


def main():
    out = os.path.join(DATA, "parquet", "gsm8k", "data")
    os.makedirs(out, exist_ok=True)
    train = head(os.path.join(DATA, "gsm8k_train.jsonl"), 16)
    test = head(os.path.join(DATA, "gsm8k_test.jsonl"), 4)
    datasets.Dataset.from_list(train[:8]).to_parquet(os.path.join(out, "train-00000-of-00002.parquet"))
    pq.write_table(datasets.Dataset.from_list(train[8:]).data.table,
                   os.path.join(out, "train-00001-of-00002.parquet"), compression="zstd")
    datasets.Dataset.from_list(test).to_parquet(os.path.join(out, "test-00000-of-00001.parquet"))
    for f in sorted(os.listdir(out)):
        md = pq.ParquetFile(os.path.join(out, f)).metadata
        print(f, md.num_rows, "rows,", md.row_group(0).column(0).compression)

    task = head(os.path.join(ROOT, "model", "task", "train.jsonl"), 32)
    rows = []
    for i, t in enumerate(task):
        prompt = [{"role": "user", "content": t["question"]}]
        if i % 3 == 0:
            prompt.insert(0, {"role": "system", "content": "Answer with the number in \\boxed{}."})
        rows.append({"id": t["id"], "prompt": prompt, "answer": t["answer"]})
    with open(os.path.join(DATA, "conversational.jsonl"), "w") as fh:
        fh.writelines(json.dumps(r) + "\n" for r in rows)
    datasets.Dataset.from_list(rows).to_parquet(os.path.join(DATA, "conversational.parquet"))
    tok = AutoTokenizer.from_pretrained(os.path.join(ROOT, "model"))
    rendered = [tok.apply_chat_template(r["prompt"], tokenize=False, add_generation_prompt=True)
                for r in rows]
    with open(os.path.join(DATA, "conversational_prompts.json"), "w") as fh:
        json.dump({"source": "scripts/make_parquet_fixtures.py", "prompts": rendered}, fh, indent=1)
    print(rendered[0])


if __name__ == "__main__":
    main()
