"""Readable text from the LaTeX in ingested titles and abstracts ("$\\alpha$-divergence" is
"α-divergence", "x^{2}" is "x²", "~" a space), for pages and emails; the database keeps the
original. pylatexenc parses the LaTeX; what it leaves as "^2" or "_i" becomes a Unicode
superscript or subscript here when every character has one."""

import html
import re
from functools import lru_cache

from pylatexenc.latex2text import LatexNodes2Text

# Text without any of these is no LaTeX (a "%" or "&" alone is prose: "50% of", "Q&A").
LATEX_MARKS = frozenset("\\$^_~{}")
SUPERSCRIPTS = dict(
    zip(
        "0123456789+-=()abcdefghijklmnoprstuvwxyzT",
        "⁰¹²³⁴⁵⁶⁷⁸⁹⁺⁻⁼⁽⁾ᵃᵇᶜᵈᵉᶠᵍʰⁱʲᵏˡᵐⁿᵒᵖʳˢᵗᵘᵛʷˣʸᶻᵀ",
        strict=True,
    )
)
SUBSCRIPTS = dict(
    zip("0123456789+-=()aehijklmnoprstuvx", "₀₁₂₃₄₅₆₇₈₉₊₋₌₍₎ₐₑₕᵢⱼₖₗₘₙₒₚᵣₛₜᵤᵥₓ", strict=True)
)
# ^{...} or ^x, not the \^ accent; _ only inside $...$ math ("snake_case" is no subscript).
SUPERSCRIPT = re.compile(r"(?<!\\)\^(?:\{([^{}\\]*)\}|([^\s{}\\]))")
SUBSCRIPT = re.compile(r"(?<!\\)_(?:\{([^{}\\]*)\}|([^\s{}\\]))")
MATH = re.compile(r"(?<!\\)\$([^$]*)(?<!\\)\$")
PROSE_SIGN = re.compile(r"(?<!\\)([%&])")  # a comment and a column sign in LaTeX; prose here
LONE_DOLLAR = re.compile(r"(?<!\\)\$")
HTML_TAG = re.compile(r"(<[^>]*>)")

_converter = LatexNodes2Text(math_mode="text")


def _scripted(table: dict[str, str], found: re.Match) -> str:
    inner = found.group(1) if found.group(1) is not None else found.group(2)
    if inner and all(char in table for char in inner):
        return "".join(table[char] for char in inner)
    return found.group(0)


def _math_subscripts(found: re.Match) -> str:
    return "$" + SUBSCRIPT.sub(lambda inner: _scripted(SUBSCRIPTS, inner), found.group(1)) + "$"


@lru_cache(maxsize=50_000)
def readable_latex(text: str) -> str:
    """`text` with its LaTeX turned into the Unicode text it stands for; text without LaTeX,
    or LaTeX that cannot be read, comes back as it was."""
    if not text or LATEX_MARKS.isdisjoint(text):
        return text
    source = PROSE_SIGN.sub(r"\\\1", text)
    source = MATH.sub(_math_subscripts, source)
    if len(LONE_DOLLAR.findall(source)) % 2:  # an unpaired "$" is a dollar sign
        head, _, tail = source.rpartition("$")
        source = f"{head}\\${tail}"
    source = SUPERSCRIPT.sub(lambda found: _scripted(SUPERSCRIPTS, found), source)
    try:
        readable = _converter.latex_to_text(source)
    except Exception:  # noqa: BLE001 - a title is shown as it came rather than not at all
        return text
    if "\n" not in text:  # display math and \\ break lines a one-line title never had
        return re.sub(r"\s+", " ", readable)
    return readable.replace("\xa0", " ")


def readable_latex_html(escaped_html: str) -> str:
    """`readable_latex` over the text between the tags of escaped HTML (an excerpt with its
    matched words in <mark>), escaped again."""
    parts = HTML_TAG.split(escaped_html)
    for index in range(0, len(parts), 2):  # even parts are text, odd ones tags
        if not LATEX_MARKS.isdisjoint(parts[index]):  # else kept as it came, escaped already
            parts[index] = html.escape(readable_latex(html.unescape(parts[index])), quote=False)
    return "".join(parts)
