"""Paper titles and abstracts as readers should see them: `{{ paper.title|readable_latex }}`
(LaTeX made readable, digest.ingest.latex), and `|readable_latex_html` for an excerpt that is
already HTML (escaped text with <mark> tags)."""

from django import template
from django.utils.html import escape
from django.utils.safestring import SafeData, SafeString, mark_safe

from digest.ingest.latex import readable_latex as readable_latex_text
from digest.ingest.latex import readable_latex_html as readable_latex_in_html

register = template.Library()


@register.filter
def readable_latex(value: object) -> str:
    return readable_latex_text(str(value))


@register.filter
def readable_latex_html(value: object) -> SafeString:
    if isinstance(value, SafeData):
        return mark_safe(readable_latex_in_html(str(value)))
    return escape(readable_latex_text(str(value)))
