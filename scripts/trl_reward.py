"""Run a TRL-style Python reward function as an mgrpo reward command.

    [reward.commands.NAME]
    command = ["python3", "scripts/trl_reward.py", "path/to/rewards.py:FUNC"]

FUNC is called as TRL calls it, `FUNC(prompts=[...], completions=[...], completion_ids=[...],
**columns)` with one list per field of the rows mgrpo writes on stdin (every dataset field as
it is, and gold_answer, prompt_text, completion_length, ...); it returns one float per
completion, printed one per line. A None (TRL's "no opinion on this row") is printed as
None: the row's reward is the sum of the other functions' weighted scores, and a row no
function scored gets no advantage. TRL's own `trl.rewards` functions run this way, e.g.
get_soft_overlong_punishment(...).
"""
import json, runpy, sys

path, name = sys.argv[1].rsplit(":", 1)
func = runpy.run_path(path)[name]
rows = [json.loads(line) for line in sys.stdin if line.strip()]
columns = {key: [row.get(key) for row in rows] for key in (rows[0] if rows else {})}
prompts, completions = columns.pop("prompt", []), columns.pop("completion", [])
for score in func(prompts=prompts, completions=completions, **columns):
    print("None" if score is None else float(score))
