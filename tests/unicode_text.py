"""Hypothesis strategies for text as it arrives from outside: any unicode, and the kinds real
listings and readers bring (CJK, right-to-left, emoji, LaTeX, control and invisible characters,
empty strings and very long lines)."""

from hypothesis import strategies as st

SPECIMENS = [
    "",
    " ",
    "深度学习中的注意力机制",
    "大規模言語モデルの推論",
    "التعلم العميق للغة",
    "למידה עמוקה",
    "\u202eevil\u202c override",
    "🧠🤖 agents 👩‍🔬🏳️‍🌈",
    r"$\mathcal{O}(n \log n)$ and \textbf{bold} \(x^2\) {\"o}",
    "\x00\x01\x07\x1b[31mred\x1b[0m",
    "\u200b\u200c\u200d\u2060\ufeff",
    "(%)",
    "( )",
    "(…)",
    "\t\r\n\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029",
    "ﬁne ligatures, Ａ full width, ℌ",
    "e\u0301 combining",
    "\ud800 lone surrogate \udfff",
    '"quoted", cells; and, commas',
    "<b>html</b> &amp; &#x1F600; &nbsp;",
    "•",
    "·",
    "Jun 12, 2023 12",
    "Subscribe",
]

# Every code point, surrogates included (JSON escapes can make a lone one).
any_character = st.characters(exclude_categories=[])
specimen = st.sampled_from(SPECIMENS)
long_line = st.builds(
    lambda piece, count: piece * count,
    st.sampled_from(["a", "漢", "🙂 ", "word ", "\x00", "ا"]),
    st.integers(min_value=300, max_value=100_000),
)
any_text = st.one_of(
    st.text(any_character, max_size=400),
    specimen,
    st.lists(st.one_of(specimen, st.text(any_character, max_size=20)), max_size=8).map("".join),
    long_line,
)
