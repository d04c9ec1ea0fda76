"""Write tests/fixtures/verify/completions.jsonl: realistic completions in the styles of
Qwen2.5-Math, DeepSeek-R1 distills and Llama instruct models, labelled by hand."""
import json

R = []
def add(family, style, extraction, gold, completion, correct, why):
    R.append(dict(family=family, style=style, extraction=extraction, gold=gold,
                  completion=completion, correct=correct, why=why))

Q = "qwen2.5-math"; D = "r1-distill"; L = "llama-instruct"

# ---- no box, no anchor: the final sentence's math (last_math) ----
add("no-anchor", L, "last_math", "(3,2)",
    "Solving the system, subtract the second equation from the first to get $x = 3$. Substituting back gives $y = 2$.\n\nSo the solution is $(3,2)$.", True, "last inline math of the final sentence")
add("no-anchor", L, "last_math", "9",
    "We need the number of divisors of $36 = 2^2 \\cdot 3^2$, which is $(2+1)(2+1)$.\n\nAnswer $ 9 $", True, "spaced inline math after 'Answer'")
add("no-anchor", Q, "last_math", "7425000",
    "The total cost is the unit price times the number of units:\n$2475 \\times 3000$.\nMultiplying out, we need\n7,425,000", True, "bare number with thousands separators on the last line")
add("no-anchor", L, "last_math", "[5,\\infty)",
    "Squaring both sides requires $x - 5 \\geq 0$. Therefore $x \\geq 5$ is the solution.", True, "relation in the final sentence as an interval")
add("no-anchor", D, "last_math", "12",
    "<think>\nThe divisors of 90 are 1, 2, 3, 5, 6, 9, 10, 15, 18, 30, 45, 90, that is 12 of them, and each gives one sequence.\n</think>\n\nEach divisor $n$ of 90 gives a common difference $d = \\frac{90}{n}$. Therefore, there are 12 distinct arithmetic sequences.", True, "plain number after the sentence's math")
add("no-anchor", L, "last_math", "120",
    "The length is 5, the width is 6 and the height is 4, so the volume of $ABCDEFGH$ is $5 \\times 6 \\times 4$. The volume of $ABCDEFGH$ is 120.", True, "number written after a named span")
add("no-anchor", Q, "last_math", "\\frac{2}{3}",
    "Let $p$ be the probability that Alice wins. Then $p = \\frac12 + \\frac14 p$, so $\\frac34 p = \\frac12$. Therefore, the probability that Alice wins is 2/3.<|im_end|>", True, "plain fraction, chat end marker")
add("no-anchor", Q, "last_math", "\\frac{2}{3}",
    "Therefore, the probability that Alice wins the game is 2/3. <|im_start|>user\nWhat is 1/3 + 1/3?<|im_end|>\n<|im_start|>assistant\n1/3 + 1/3 = 5", True, "text after a new chat turn is not the answer")
add("no-anchor", L, "last_math", "34",
    "Checking $n = 35$ gives a remainder, while $n = 34$ works.\n\nThe largest $n$ is 34.", True, "number after the last math")
add("no-anchor", L, "last_math", "35",
    "Checking $n = 35$ gives a remainder, while $n = 34$ works.\n\nThe largest $n$ is 34.", False, "wrong final number")
add("no-anchor", Q, "last_math", "5",
    "The total is $12$ apples, or $\\frac{12}{1}$ per box. But I'm not sure.", False, "hedged: the last math is 12, not 5")
add("no-anchor", L, "last_math", "19",
    "For $f(x) = 0$ there is 1 point and for each of $f(x) = 1, \\ldots, 9$ there are 2 points. So the domain has $1 + 2 \\times 9 = 19$ points.", True, "value after = at the end of the span")
add("no-anchor", L, "last_math", "100\\%",
    "Dividing the two relations gives $$\\frac{\\Delta x'}{\\Delta x} \\geq 2.$$ Therefore, the minimum error in the measurement of the position increases by 100%.", True, "percent in plain text after display math")
add("no-anchor", Q, "last_math", "3",
    "So the answer is\n\n$$x = 3$$", True, "display math after 'So the answer is' on its own line")
add("no-anchor", L, "last_math", "\\frac{10}{9}", "\\frac{10}{9}", True, "bare LaTeX answer")
add("no-anchor", L, "last_math", "-1",
    "Plugging in $x = 2$ gives $f(2) = 3$, and plugging in $x = -1$ gives $f(-1) = -1$.", True, "assignment chain f(-1) = -1: the value")
add("no-anchor", L, "last_math", "3", "I am not sure how to approach this problem.", False, "no answer")
add("no-anchor", D, "anchored", "12",
    "<think>\n12 sequences.\n</think>\n\nThere are 12 distinct arithmetic sequences.", False, "anchored: no marker, no answer (an RL reward does not guess)")

# ---- unicode and markdown bold ----
add("unicode", L, "last_math", "\\sqrt{2}", "The diagonal of a unit square is √2.", True, "unicode square root")
add("unicode", L, "last_math", "2\\pi", "The circumference is therefore 2π.", True, "unicode pi")
add("unicode", D, "anchored", "3\\sqrt{3}", "<think>\nArea of hexagon...\n</think>\n\nThe answer is 3√3.", True, "unicode root after a coefficient")
add("unicode", L, "last_math", "\\frac{\\pi}{4}", "The angle is $\\theta = π/4$.", True, "unicode pi inside math")
add("unicode", L, "anchored", "-5", "The answer is −5.", True, "unicode minus sign")
add("unicode", L, "anchored", "5", "The answer is −5.", False, "unicode minus is still a minus")
add("bold", L, "last_math", "73", "Adding the two counts, 41 + 32 = 73.\n\nSo the total number of marbles is **73**.", True, "markdown bold")
add("bold", L, "anchored", "73", "41 + 32 = 73\n\nFinal Answer: **73**", True, "bold after Final Answer:")
add("bold", L, "anchored", "73", "**Final Answer:** The total is **73** marbles.", True, "bold heading and bold number")
add("bold", D, "last_math", "14", "<think>\n7*2\n</think>\n\n**Answer: 14**", True, "answer inside bold")
add("bold", L, "last_math", "14", "The first guess is **12**, which is too small.\n\nThe right count is **15**.", False, "last bold is 15")

# ---- units ----
add("units", Q, "anchored", "1200", "The speed is $v = \\frac{d}{t} = \\boxed{1.2 \\times 10^{3} \\mathrm{~km} / \\mathrm{s}}$.", True, "scientific notation with a km/s unit")
add("units", Q, "anchored", "1200", "So the area is $\\boxed{1.2 \\times 10^{3}\\ \\mathrm{m}^{2}}$.", True, "unit with an exponent")
add("units", L, "anchored", "1200", "The final answer is: $\\boxed{1200 \\text{ cm}^3}$", True, "text unit cubed")
add("units", Q, "anchored", "9.8", "Thus $g \\approx \\boxed{9.8 \\text{ m}/\\text{s}^2}$.", True, "m/s^2")
add("units", Q, "anchored", "120", "The time taken is $\\boxed{120\\,\\mathrm{s}}$.", True, "thin space and a one-letter unit")
add("units", L, "anchored", "12", "The final answer is: $\\boxed{12\\text{ inches}}$", True, "plural word unit")
add("units", Q, "anchored", "1200", "The speed is $\\boxed{1.2 \\times 10^{2} \\mathrm{~km} / \\mathrm{s}}$.", False, "wrong power of ten")
add("units", L, "anchored", "45", "The angle measures $\\boxed{45^\\circ}$.", True, "degrees")

# ---- text case ----
add("text", Q, "anchored", "\\text{No}", "Since the discriminant is negative, there is no real root, so the answer is $\\boxed{\\text{no}}$.", True, "case of a text answer")
add("text", L, "anchored", "\\text{Yes}", "The final answer is: $\\boxed{\\text{YES}}$", True, "upper case")
add("text", L, "anchored", "\\text{No}", "The final answer is: $\\boxed{\\text{yes}}$", False, "different word")
add("text", Q, "anchored", "\\text{even}", "Since $f(-x) = f(x)$, the function is $\\boxed{\\text{even}}$.", True, "word answer")
add("text", Q, "anchored", "\\text{odd}", "Since $f(-x) = f(x)$, the function is $\\boxed{\\text{even}}$.", False, "wrong word")
add("text", D, "anchored", "\\text{(C)}", "<think>\nOption C.\n</think>\n\nThe correct option is \\boxed{C}.", True, "choice letter")

# ---- named assignments ----
add("assignment", Q, "anchored", "(0, 1.5)", "The midpoint is $D = \\left(\\frac{0+0}{2}, \\frac{0+3}{2}\\right)$, so $\\boxed{D = (0, 1.5)}$.", True, "named point")
add("assignment", Q, "anchored", "(0, \\frac{3}{2})", "Therefore $\\boxed{D = (0, 1.5)}$.", True, "named point, decimal vs fraction")
add("assignment", L, "anchored", "(0, 2)", "Therefore $\\boxed{D = (0, 1.5)}$.", False, "wrong coordinate")
add("assignment", Q, "anchored", "\\frac{1}{3}", "So $\\boxed{k = \\frac{1}{3}}$.", True, "k = value")
add("assignment", L, "anchored", "4, 5", "Hence $\\boxed{AB = 4, CD = 5}$.", True, "several named values")
add("assignment", Q, "anchored", "(-6, 10)", "Substituting, $A = -6$ and $B = 10$, so $(A, B) = \\boxed{(-6, 10)}$.", True, "ordered pair after a named tuple")
add("assignment", L, "anchored", "(-6, 10)", "Final Answer: The final answer is \\((-6, 10)\\). I hope it is correct.", True, "inline-math delimiters after Final Answer")
add("assignment", Q, "anchored", "\\frac{1}{3}", "We get $\\boxed{x = 5 + 5 + 1 = \\frac{1}{3}}$.", True, "assignment chain: the last value")
add("assignment", Q, "anchored", "11", "We get $\\boxed{x = 5 + 5 + 1 = 11}$.", True, "assignment chain with arithmetic")
add("assignment", Q, "anchored", "12", "We get $\\boxed{x = 5 + 5 + 1 = 11}$.", False, "chain value is 11")
add("assignment", L, "anchored", "2x + 3", "The line is $\\boxed{y = 2x + 3}$.", True, "equation of a line for its right-hand side")

# ---- several boxes ----
add("several-boxes", Q, "anchored", "1, 2", "The solutions are $x = \\boxed{1}$ and $x = \\boxed{2}$.", True, "boxes joined by an assignment and 'and'")
add("several-boxes", Q, "anchored", "1, 2", "The roots are $\\boxed{1}$, $\\boxed{2}$.", True, "boxes joined by a comma")
add("several-boxes", D, "anchored", "(3, 3), (1, 1)", "<think>\nparts (a) and (b)\n</think>\n\n$$\\boxed{(3, 3)} \\text{ for part (a) and } \\boxed{(1, 1)}$$", True, "part labels between boxes")
add("several-boxes", Q, "anchored", "1, 2", "We need \\boxed{1} paper and \\boxed{2} bins.", True, "words with 'and' between boxes")
add("several-boxes", Q, "anchored", "45", "So the total is \\boxed{40}. Wait, I forgot the last 5 apples. The correct total is \\boxed{45}.", True, "self-correction: the last box")
add("several-boxes", Q, "anchored", "45", "The answer is \\boxed{40} or \\boxed{45}.", False, "a hedge between two answers is wrong")
add("several-boxes", L, "anchored", "45", "My first guess \\boxed{40} is wrong, so the answer is \\boxed{45}.", True, "prose between boxes: the last wins")
add("several-boxes", D, "anchored", "-2(x-1)^2+5, 3(x+2)^2-2",
    "<think>\ncomplete the squares\n</think>\n\n\\( y_1 = \\boxed{-2(x - 1)^2 + 5} \\) and \\( y_2 = \\boxed{3(x + 2)^2 - 2} \\)", True, "two named boxes")
add("several-boxes", Q, "anchored", "2, 3, 5, 7, 13", "The primes are $\\boxed{2}, \\boxed{3}, \\boxed{5}, \\boxed{7}, \\boxed{13}$.", True, "five boxes in a row")
add("several-boxes", Q, "anchored", "2, 3, 5, 7", "The primes are $\\boxed{2}, \\boxed{3}, \\boxed{5}, \\boxed{7}, \\boxed{13}$.", False, "one extra element")

# ---- integer sample points ----
add("integer-points", Q, "anchored", "\\binom{2n}{n}", "The count is $\\boxed{\\frac{(2n)!}{(n!)^2}}$.", True, "binomial as factorials")
add("integer-points", Q, "anchored", "n!", "Thus the number of orderings is $\\boxed{n \\cdot (n-1)!}$.", True, "n (n-1)! is n!")
add("integer-points", Q, "anchored", "(n+1)!", "Thus the number of orderings is $\\boxed{n \\cdot (n-1)!}$.", False, "different factorial")
add("integer-points", L, "anchored", "\\binom{n}{2}", "The final answer is: $\\boxed{\\frac{n(n-1)}{2}}$", True, "binomial as a polynomial")
add("integer-points", L, "anchored", "\\binom{n}{2}", "The final answer is: $\\boxed{\\frac{n(n+1)}{2}}$", False, "off by one")
add("integer-points", D, "anchored", "2^n", "<think>subsets</think>\n\nThe number of subsets is $\\boxed{\\sum_{k=0}^{n} \\binom{n}{k}}$.", False, "a sum we do not evaluate symbolically: not claimed equal")

# ---- relations ----
add("relations", L, "last_math", "x < 1", "Dividing by $-1$ flips the sign, so $-x > -1$.", True, "negated inequality")
add("relations", L, "last_math", "x < 1", "So $x > -1$.", False, "a different inequality")
add("relations", Q, "anchored", "x \\ge 2", "Therefore $\\boxed{2x + 1 \\geq 5}$.", True, "linear inequality read as x >= 2")
add("relations", Q, "anchored", "[-2, 7]", "So $\\boxed{-2 \\le x \\le 7}$.", True, "double inequality as an interval")
add("relations", Q, "anchored", "(0, 1)", "The range is $\\boxed{0 < f(x) < 1}$.", True, "range of f")
add("relations", L, "last_math", "x \\neq 3", "The only excluded value is $x != 3$.", True, "!= spelling")
add("relations", L, "last_math", "x \\le 1", "So the condition is $x <= 1$.", True, "<= spelling")
add("relations", L, "last_math", "x \\le 1", "So the condition is $x < 1$.", False, "strict vs non-strict")

# ---- approximations (the default policy wants exact values for exact golds) ----
add("approx", Q, "anchored", "11", "So $\\boxed{x \\approx 11}$.", True, "approximation is the only value")
add("approx", Q, "anchored", "\\frac{1}{3}", "So $\\boxed{x = \\frac{1}{3} \\approx 0.33}$.", True, "exact value before \\approx")
add("approx", Q, "anchored", "0.5", "So $\\boxed{x = \\frac{1}{2}}$.", True, "exact decimal gold")
add("approx", L, "anchored", "\\frac{1}{12}", "The final answer is: $\\boxed{0.0833}$", False, "a rounded decimal for an exact gold (default policy)")

# ---- decimal comma / thousands ----
add("decimal-comma", L, "last_number", "1.22", "Le résultat est donc 1,22", True, "decimal comma under last_number")
add("decimal-comma", L, "last_number", "7425000", "So the company earns 7,425,000 dollars.", True, "thousands separators")
add("decimal-comma", L, "last_number", "1000", "The sum is 1 000.", True, "space as thousands separator")
add("decimal-comma", Q, "anchored", "14916", "Therefore, $\\boxed{14{,}916}$ is our answer.", True, "braced thousands separator")
add("decimal-comma", Q, "anchored", "1000000", "The count is $\\boxed{1,\\!000,\\!000}$.", True, "thousands with negative thin spaces")
add("decimal-comma", L, "last_number", "0.111", "Il reste 0,111 litre.", True, "0,111 is a decimal")

# ---- matrices in text ----
add("matrix", L, "last_math", "\\begin{pmatrix}1 & 0 \\\\ 0 & 1\\end{pmatrix}", "The identity matrix is $ \\begin{pmatrix}1 & 0 \\\\ 0 & 1\\end{pmatrix} $.", True, "matrix in running text")
add("matrix", L, "last_math", "\\begin{pmatrix}1 & 2 \\\\ 3 & 4\\end{pmatrix}", "Special matrix: $ \\left[\\begin{array}{cc}1 & 2 \\\\3 & 4\\end{array}\\right] $", True, "array in brackets")
add("matrix", L, "last_math", "\\begin{pmatrix}6 & 8 \\\\ 10 & 12\\end{pmatrix}", "The sum is $\\begin{pmatrix}1 & 2 \\\\ 3 & 4\\end{pmatrix} + \\begin{pmatrix}5 & 6 \\\\ 7 & 8\\end{pmatrix}$", True, "sum of literal matrices")
add("matrix", L, "last_math", "\\begin{pmatrix}19 & 22 \\\\ 43 & 50\\end{pmatrix}", "The product is $\\begin{pmatrix}1 & 2 \\\\ 3 & 4\\end{pmatrix}\\begin{pmatrix}5 & 6 \\\\ 7 & 8\\end{pmatrix}$.", True, "product of literal matrices")
add("matrix", L, "last_math", "\\begin{pmatrix}19 & 22 \\\\ 43 & 50\\end{pmatrix}", "The product is $\\begin{pmatrix}5 & 6 \\\\ 7 & 8\\end{pmatrix}\\begin{pmatrix}1 & 2 \\\\ 3 & 4\\end{pmatrix}$.", False, "matrix product does not commute")
add("matrix", Q, "anchored", "\\begin{pmatrix} 2 \\\\ -1 \\end{pmatrix}", "Therefore the vector is $\\boxed{\\begin{pmatrix} 2 \\\\ -1 \\end{pmatrix}}$.", True, "column vector")
add("matrix", Q, "anchored", "(2, -1)", "Therefore the vector is $\\boxed{\\begin{pmatrix} 2 \\\\ -1 \\end{pmatrix}}$.", True, "column vector as a tuple")

# ---- lists, sets, solution groups ----
add("lists", Q, "anchored", "(37,3,3,13),(17,3,3,7),(3,37,3,13),(3,17,3,7),(3,3,2,3)",
    "Collecting all cases: $\\boxed{(3, 37, 3, 13), (3, 17, 3, 7), (3, 3, 2, 3), (3,17,3,7), (17,3,3,7), (37,3,3,13)}$", True, "same solutions, other order, one repeated")
add("lists", Q, "anchored", "(0;0;0),(0;-2;0),(4;0;6)", "\\boxed{(4, 0, 6), (0, -2, 0), (0, 0, 0)}", True, "semicolons inside tuples")
add("lists", Q, "anchored", "-12;-11;-10", "$\\boxed{\\{-12, -11, -10\\}}$", True, "semicolon list vs a set")
add("lists", Q, "anchored", "(11,7)or(7,11)", "$\\boxed{(7,11),\\ (11,7)}$", True, "'or' between pairs")
add("lists", Q, "anchored", "p=5,q=2;p=7,q=2", "$\\boxed{(5,2),(7,2)}$", True, "solution groups of named values")
add("lists", Q, "anchored", "p=5,q=2;p=7,q=2", "$\\boxed{(2,5),(2,7)}$", False, "pairs reversed")
add("lists", L, "anchored", "21,16 \\text{ or } 11", "The final answer is: $\\boxed{21,16,11}$", True, "'or' in the gold list")
add("lists", L, "last_math", "(1,3)", "${1,3}$", True, "bare braces only group")
add("lists", D, "anchored", "1, 2, 3", "<think>\nthree roots\n</think>\n\n\\boxed{1} and \\boxed{2} and \\boxed{3}", True, "three boxes with 'and'")
add("lists", D, "anchored", "1, 2, 3", "<think>\nthree roots\n</think>\n\n\\boxed{1},\\boxed{2}", False, "a root missing")

# ---- style-typical full completions ----
add("style", Q, "anchored", "28\\%",
    "Let the initial value be $x$. After Monday the value is $0.9x$, after Tuesday $0.8 \\cdot 0.9x = 0.72x$.\nThe total loss is $1 - 0.72 = 0.28$, that is $\\boxed{28\\%}$.", True, "percent in a box")
add("style", Q, "anchored", "28",
    "Let the initial value be $x$. After Monday the value is $0.9x$, after Tuesday $0.72x$.\nThe total loss is $\\boxed{28\\%}$.", True, "percent sign ignored for a number gold (percent=either)")
add("style", D, "anchored", "\\frac{\\sqrt{3}}{2}",
    "<think>\nOkay, so I need sin 60°. Wait, let me recall: sin 60° = √3/2. Yes.\n</think>\n\nUsing the 30-60-90 triangle, $\\sin 60^\\circ = \\frac{\\sqrt{3}}{2}$.\n\n**Final Answer**\n\\[\n\\boxed{\\dfrac{\\sqrt{3}}{2}}\n\\]", True, "R1 final answer block")
add("style", D, "anchored", "\\frac{1}{2}",
    "<think>\nOkay, so I need sin 60°. Hmm, is it 1/2? No, that is sin 30°.\n</think>\n\n**Final Answer**\n\\[\n\\boxed{\\dfrac{\\sqrt{3}}{2}}\n\\]", False, "the thinking's rejected value is not the answer")
add("style", L, "anchored", "5",
    "## Step 1: Write the equation\n$2x + 3 = 13$\n\n## Step 2: Solve\n$2x = 10$, so $x = 5$.\n\nThe final answer is: $\\boxed{5}$", True, "Llama step format")
add("style", L, "anchored", "6",
    "## Step 1: Write the equation\n$2x + 3 = 13$\n\n## Step 2: Solve\n$2x = 10$, so $x = 5$.\n\nThe final answer is: $\\boxed{5}$", False, "wrong value in Llama format")
add("style", Q, "anchored", "\\frac{7}{2}",
    "Please reason step by step.\n\nFirst, $3.5 = \\frac{35}{10} = \\frac{7}{2}$.\n\nThus, the final answer is $\\boxed{3.5}$.", True, "decimal for a fraction (exact)")
add("style", L, "anchored", "72",
    "Natalia sold 48/2 = 24 clips in May.\nAltogether she sold 48 + 24 = 72 clips.\n#### 72", True, "GSM8K style")
add("style", Q, "last_number", "18",
    "Janet's ducks lay 16 eggs. She eats 3 and bakes 4, leaving 16 - 3 - 4 = 9 eggs, sold at $2 each: 9 * 2 = 18 dollars.", True, "last number for GSM8K")
add("style", D, "anchored", "12\\text{ and }13",
    "<think>\n√30 is about 5.48 and √50 about 7.07.\n</think>\n\nThe sum $\\sqrt{30} + \\sqrt{50} \\approx 12.55$ lies between $\\boxed{12 $ and $13 }. $ Final Answer: The final answer is \"$12 $ and $13 $\". I hope it is correct.", True, "spans joined by 'and' after Final Answer")
add("style", Q, "anchored", "\\frac{1}{2}",
    "Thus $P = \\boxed{\\frac12}$.<|im_end|>\n<|im_start|>user\nAnd the answer is \\boxed{3}", True, "text after the end of turn is ignored")

with open("tests/fixtures/verify/completions.jsonl", "w") as f:
    for r in R:
        f.write(json.dumps(r, ensure_ascii=False) + "\n")
print(len(R), "rows")
