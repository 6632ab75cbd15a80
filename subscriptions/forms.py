"""The sign-up and preference forms. Topic lines are cleaned here, so every path that stores
topics stores them the same way."""

import functools
import importlib.resources
import zoneinfo
from collections.abc import Iterable, Mapping

from django import forms
from django.forms.utils import flatatt
from django.template.loader import render_to_string
from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

from subscriptions.addresses import canonical_email
from subscriptions.models import Subscriber
from subscriptions.topics import split_topics

MAX_TOPIC_LENGTH = 100
MAX_LIKED_AT_SIGN_UP = 10
MAX_PAPER_ID = 2**63 - 1
HOUR_CHOICES = [(hour, f"{hour:02d}:00") for hour in range(24)]


@functools.cache
def time_zone_names() -> tuple[str, ...]:
    """Every zone a reader may hold, aliases included (Asia/Calcutta, US/Eastern): what the
    forms, the admin and imports accept, so a reader stored with an old name keeps it."""
    names = {
        name
        for name in zoneinfo.available_timezones()
        if "/" in name and not name.startswith(("posix/", "right/", "Etc/", "SystemV/"))
    }
    return ("UTC", *sorted(names))


@functools.cache
def listed_time_zone_names() -> tuple[str, ...]:
    """The zones the select lists: UTC and zone.tab's one current name per country's region
    (Asia/Kolkata, not Asia/Calcutta), as pytz.common_timezones does, without pytz."""
    zone_tab = importlib.resources.files("tzdata.zoneinfo").joinpath("zone.tab").read_text()
    rows = (line.split("\t") for line in zone_tab.splitlines() if not line.startswith("#"))
    accepted = set(time_zone_names())
    return ("UTC", *sorted({row[2] for row in rows if len(row) > 2} & accepted))


@functools.cache
def _time_zone_options() -> str:
    return "".join(_time_zone_option(name) for name in listed_time_zone_names())


def _time_zone_option(name: str) -> str:
    return f'<option value="{escape(name)}">{escape(name.replace("_", " "))}</option>'


class TimeZoneSelect(forms.Select):
    """~420 options: joined from one cached string instead of one template render per option.
    A zone held but not listed (an alias) comes first, so saving the form keeps it."""

    def render(self, name, value, attrs=None, renderer=None) -> SafeString:
        options = _time_zone_options()
        if value and value not in _listed_time_zone_set():
            options = _time_zone_option(value) + options
        if value:
            marker = f'<option value="{escape(value)}">'
            options = options.replace(marker, marker[:-1] + " selected>", 1)
        final_attrs = self.build_attrs(self.attrs, {**(attrs or {}), "name": name})
        return mark_safe(f"<select{flatatt(final_attrs)}>{options}</select>")


class TimeZoneField(forms.CharField):
    """A choice among the IANA zones, without ChoiceField's per-form deep copy of the choices."""

    widget = TimeZoneSelect
    default_error_messages = {
        "invalid_choice": "Select a valid choice. %(value)s is not one of the available choices."
    }

    def validate(self, value: str) -> None:
        super().validate(value)
        if value and value not in _time_zone_set():
            raise forms.ValidationError(
                self.error_messages["invalid_choice"],
                code="invalid_choice",
                params={"value": value},
            )


@functools.cache
def _listed_time_zone_set() -> frozenset[str]:
    return frozenset(listed_time_zone_names())


@functools.cache
def _time_zone_set() -> frozenset[str]:
    return frozenset(time_zone_names())


class SharedChoicesMixin:
    """These fields' choices are fixed (only ever replaced, never changed in place), so each form
    shares them instead of deep-copying them on every request."""

    def __deepcopy__(self, memo):
        return forms.Field.__deepcopy__(self, memo)


class FixedChoiceField(SharedChoicesMixin, forms.ChoiceField):
    pass


class FixedTypedChoiceField(SharedChoicesMixin, forms.TypedChoiceField):
    pass


def clean_topic_lines(text: str) -> str:
    """The topics typed in `text` (split by `split_topics`: commas, semicolons or new lines), one
    per line: at most Subscriber.MAX_TOPICS, at least one that is not an exclusion ('-word');
    repeated ones are dropped. What this returns is what is saved and what the preview ranks."""
    topics: list[str] = []
    seen: set[str] = set()
    for topic in split_topics(text):
        if topic.lower() in seen:
            continue
        if len(topic) > MAX_TOPIC_LENGTH:
            raise forms.ValidationError(
                f"Keep each topic under {MAX_TOPIC_LENGTH} characters: “{topic[:30]}…” is longer."
            )
        if topic.startswith("-") and not topic[1:].strip():
            raise forms.ValidationError("A lone “-” excludes nothing: add a word after it.")
        seen.add(topic.lower())
        topics.append(topic)
    if len(topics) > Subscriber.MAX_TOPICS:
        raise forms.ValidationError(
            f"Up to {Subscriber.MAX_TOPICS} topics (you entered {len(topics)}): separate them "
            "with commas or new lines."
        )
    if not any(not topic.startswith("-") for topic in topics):
        raise forms.ValidationError("Enter at least one topic you want papers about.")
    return "\n".join(topics)


def liked_paper_ids(values: Iterable[str]) -> list[int]:
    """The papers ticked in the sign-up's preview, as ids: the first MAX_LIKED_AT_SIGN_UP
    distinct positive integers; anything else is dropped without a word (the ticks are a hint,
    never a reason to refuse a sign-up)."""
    ids: list[int] = []
    for value in values:
        text = str(value).strip()
        if not (text.isascii() and text.isdigit()) or len(text) > 19:
            continue
        number = int(text)
        if 0 < number <= MAX_PAPER_ID and number not in ids:
            ids.append(number)
            if len(ids) == MAX_LIKED_AT_SIGN_UP:
                break
    return ids


class PreferenceFields(forms.Form):
    topics = forms.CharField(
        widget=forms.Textarea(
            attrs={
                "rows": 4,
                "placeholder": "e.g. mixture of experts, protein folding, -survey",
                "autocapitalize": "none",
            }
        ),
        max_length=4000,
        help_text=(
            "Up to 20 keywords or phrases, separated by commas or new lines. Start one with “-” "
            "to exclude papers that mention it."
        ),
    )
    frequency = FixedChoiceField(
        choices=Subscriber.Frequency.choices,
        initial=Subscriber.Frequency.DAILY,
        widget=forms.RadioSelect,
    )
    weekday = FixedTypedChoiceField(
        choices=Subscriber.Weekday.choices,
        coerce=int,
        initial=Subscriber.Weekday.MONDAY,
        label="Weekly on (weekly only)",  # a script hides the field while Daily is chosen
    )
    send_hour = FixedTypedChoiceField(
        choices=HOUR_CHOICES, coerce=int, initial=7, label="Send at (local time)"
    )
    time_zone = TimeZoneField(initial="UTC")

    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("label_suffix", "")
        super().__init__(*args, **kwargs)

    def clean_topics(self) -> str:
        return clean_topic_lines(self.cleaned_data["topics"])


class CanonicalEmailField(forms.EmailField):
    """An address in its canonical spelling (subscriptions.addresses); the reason it has none
    is the field's error."""

    def to_python(self, value) -> str:
        value = super().to_python(value)
        return canonical_email(value) if value else value


class SignUpForm(PreferenceFields):
    # Shown above the button and stored with each sign-up as the consent record.
    consent_text = (
        "Email me a digest of trending research papers matching my topics, at the frequency and "
        "time I chose. I can change my preferences or unsubscribe from a link in every email."
    )
    email = CanonicalEmailField(
        max_length=254,
        widget=forms.EmailInput(
            attrs={"autocomplete": "email", "placeholder": "you@example.org", "required": True}
        ),
        label="Your email",
    )
    # A honeypot: hidden from people by CSS, filled in by naive bots.
    website = forms.CharField(
        required=False,
        label="Leave this field empty",
        widget=forms.TextInput(attrs={"autocomplete": "off", "tabindex": "-1"}),
    )
    field_order = ["email", "topics", "frequency", "weekday", "send_hour", "time_zone"]

    @property
    def is_bot(self) -> bool:
        return bool(self.data.get("website", "").strip())

    def preferences(self) -> dict:
        return {name: self.cleaned_data[name] for name in PreferenceFields.base_fields}

    def liked_paper_ids(self) -> list[int]:
        """The ids of the papers ticked in the preview (`like`, checkboxes tied to this form)."""
        values = self.data.getlist("like") if hasattr(self.data, "getlist") else []
        return liked_paper_ids(values[: 10 * MAX_LIKED_AT_SIGN_UP])


class PreferencesForm(PreferenceFields):
    papers_per_digest = FixedTypedChoiceField(
        choices=[(n, str(n)) for n in (3, 5, 10, 15, 20, 30)],
        coerce=int,
        initial=10,
        label="Papers per digest",
    )

    @classmethod
    def for_subscriber(cls, subscriber: Subscriber, data=None) -> "PreferencesForm":
        form = cls(data, initial={name: getattr(subscriber, name) for name in cls.base_fields})
        field = form.fields["papers_per_digest"]
        if subscriber.papers_per_digest not in dict(field.choices):  # set by an editor or import
            count = subscriber.papers_per_digest
            field.choices = sorted([*field.choices, (count, str(count))])
        return form


@functools.cache
def blank_sign_up_fields() -> SafeString:
    """The home page's form is the same for everyone (bar the CSRF token): render it once."""
    return mark_safe(render_to_string("pages/_sign_up_fields.html", {"form": SignUpForm()}))


def sign_up_fields_with(data: Mapping[str, str]) -> SafeString:
    """The form's fields holding what the reader typed, with no error shown (nothing was sent
    yet: the page of the "Preview" button)."""
    typed = {name: data[name] for name in SignUpForm.base_fields if name in data}
    typed.pop("website", None)
    form = SignUpForm(initial=typed)
    return mark_safe(render_to_string("pages/_sign_up_fields.html", {"form": form}))
