"""The reward of the palindrome example (configs/copy-palindrome.toml), as a TRL reward function:
half a point for a reply of exactly `length` digits (`length` is a field of each dataset row),
the other half when those digits read the same backwards."""


def palindrome(completions, length, **kwargs):
    scores = []
    for text, n in zip(completions, length):
        digits = len(text) == n and text.isdigit()
        scores.append(0.5 * digits + 0.5 * (digits and text == text[::-1]))
    return scores
