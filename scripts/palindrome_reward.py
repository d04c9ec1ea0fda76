"""The reward of the palindrome example (configs/copy-palindrome.toml), as a TRL reward function:
half a point for a reply of exactly `length` digits (`length` is a field of each dataset row),
the other half when those digits read the same backwards."""


def palindrome(completions, length, **kwargs):
    scores = []
    for text, n in zip(completions, length):
        digits = len(text) == n and text.isdigit()
        scores.append(0.5 * digits + 0.5 * (digits and text == text[::-1]))
    return scores


def palindrome_or_none(prompts, completions, length, **kwargs):
    """`palindrome` for prompts that start with an odd digit, and None (no opinion, TRL's
    convention for a function that grades another task's rows) for the others."""
    scores = palindrome(completions, length)
    return [s if p[:1] in "13579" else None for p, s in zip(prompts, scores)]
