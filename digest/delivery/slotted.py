"""Templates rendered once with named slots, then filled per reader by joining strings.

Our own because Django's templates cannot be partially evaluated: a template is rendered once with
a marker in place of each per-reader value, and the output is cut into its literal parts and its
slots. Whether a slot was autoescaped is read from the output itself (the marker holds an `&`,
which comes out as `&amp;` where the template escaped it), so filling escapes exactly where the
template would have. A marker holds a random per-process key, so no paper text can forge one.
"""

import html
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass

from django.utils.safestring import SafeString, mark_safe

_KEY = secrets.token_hex(6)
_SLOT = re.compile(f"\ue000{_KEY}:(\\w+)(&amp;|&)\ue001")


def slot(name: str) -> SafeString:
    """The marker of slot `name`, to render in a template's context in place of its value.

    Marked safe so that it passes unchanged through other rendered blocks it is nested in; it is
    its own `&` that tells whether the template escaped the place where it stands."""
    return mark_safe(f"\ue000{_KEY}:{name}&\ue001")


def unsafe_slot(name: str) -> str:
    """The marker of slot `name` as a plain string: an autoescaping template escapes it."""
    return f"\ue000{_KEY}:{name}&\ue001"


@dataclass(frozen=True)
class Slotted:
    """Rendered output cut at its slots: parts[0], slot 0, parts[1], slot 1, …, parts[-1]."""

    parts: tuple[str, ...]
    slots: tuple[tuple[str, bool], ...]  # (name, escape the value)

    @classmethod
    def parse(cls, rendered: str) -> "Slotted":
        pieces = _SLOT.split(rendered)
        names, escaped = pieces[1::3], pieces[2::3]
        return cls(
            tuple(pieces[0::3]),
            tuple((name, mark == "&amp;") for name, mark in zip(names, escaped, strict=True)),
        )

    def fill(self, values: Mapping[str, str]) -> str:
        # html.escape is what django.utils.html.escape calls, without its lazy-string wrapper.
        out = [self.parts[0]]
        for (name, escaped), part in zip(self.slots, self.parts[1:], strict=True):
            value = values[name]
            out.append(html.escape(value) if escaped else value)
            out.append(part)
        return "".join(out)

    def fill_safe(self, values: Mapping[str, str]) -> SafeString:
        return mark_safe(self.fill(values))
