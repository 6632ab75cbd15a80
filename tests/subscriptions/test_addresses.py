"""One canonical spelling per mailbox (subscriptions/addresses.py), and the migration that
canonicalized the addresses stored before it."""

from email import message_from_bytes, policy
from email.headerregistry import Address

import pytest
from django.core.exceptions import ValidationError
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st

from config.emails import build_email
from subscriptions import links
from subscriptions.addresses import canonical_email, display_email

# The variants of issue 11: every one either folds into victim@example.com or is refused.
SAME_MAILBOX = [
    "victim@example.com",
    "victim@ｅxample.com",  # fullwidth e
    "victim@EXAMPLE.COM",
    "victim＠example.com",  # fullwidth commercial at
    "  victim@Example.Com  ",
    "victim@example.com.",  # the root dot
    "ｖｉｃｔｉｍ@ｅｘａｍｐｌｅ．ｃｏｍ",
]
REFUSED = {
    "victim@e\u00adxample.com": "soft hyphen",
    "victim@exam\u200dple.com": "zero-width joiner",
    "vic\u200btim@example.com": "zero-width space",
    "victim@example.com\u2060": "word joiner",
    "\ufeffvictim@example.com": "zero-width no-break space",
    "victim@\u202eexample.com": "bidirectional control",
    "victim@exa\u2066mple.com": "bidirectional control",
    "victim\u200e@example.com": "left-to-right mark",
    "victim@example.com\u200f": "right-to-left mark",
    '"a\x0bb"@example.com': "control character",
    '"a\nb"@example.com': "control character",
    "vic\x00tim@example.com": "control character",
    "vic\x7ftim@example.com": "control character",
}


@pytest.mark.parametrize("address", SAME_MAILBOX)
def test_variant_spellings_have_one_canonical_form(address):
    assert canonical_email(address) == "victim@example.com"


@pytest.mark.parametrize("address, what", REFUSED.items())
def test_addresses_with_invisible_or_control_characters_are_refused(address, what):
    with pytest.raises(ValidationError) as refused:
        canonical_email(address)

    assert what in refused.value.messages[0]
    assert "U+" in refused.value.messages[0]


def test_an_idn_domain_is_stored_in_punycode_and_shown_in_unicode():
    assert canonical_email("reader@Bücherei.de") == "reader@xn--bcherei-n2a.de"
    assert canonical_email("reader@xn--bcherei-n2a.de") == "reader@xn--bcherei-n2a.de"
    assert display_email("reader@xn--bcherei-n2a.de") == "reader@bücherei.de"
    assert display_email("Ada@example.org") == "Ada@example.org"


def test_the_local_part_keeps_its_case():
    assert canonical_email("Ada.Lovelace@Example.ORG") == "Ada.Lovelace@example.org"


@pytest.mark.parametrize("address", ["", "no-at-sign", "@example.com", "ada@", "a b@example.com",
                                     "ada@-bad-.com", "ada@exa mple.com"])  # fmt: skip
def test_what_is_not_an_address_is_refused(address):
    with pytest.raises(ValidationError):
        canonical_email(address)


# Arbitrary text, and text shaped like an address (quoted local parts, dots, IDN and fullwidth
# letters, controls and invisibles mixed in), so that both refusals and acceptances are explored.
ADDRESS_CHARACTERS = st.one_of(
    st.characters(),
    st.sampled_from(list('abcXYZ09.-+_"\\ @()<>,;:[]\x0b\r\n\t\x00ｅ＠ü\u00ad\u200d\u202e')),
)
LOCAL_PART = st.one_of(
    st.text(ADDRESS_CHARACTERS, min_size=1, max_size=12),
    st.builds(lambda text: f'"{text}"', st.text(ADDRESS_CHARACTERS, max_size=10)),
)
DOMAIN = st.one_of(
    st.text(ADDRESS_CHARACTERS, min_size=1, max_size=20),
    st.builds(
        lambda label, tld: f"{label}.{tld}",
        st.text(ADDRESS_CHARACTERS, min_size=1, max_size=10),
        st.sampled_from(["com", "de", "org", "ｃｏｍ", "COM"]),
    ),
)
# Plausible addresses: dot-atoms and quoted strings of printable ASCII, domains of letters with
# Unicode, fullwidth and upper-case ones among them.
ATEXT = st.sampled_from(list("abcxyzABC0189!#$%&'*+/=?^_`{|}~-"))
PLAUSIBLE_LOCAL = st.one_of(
    st.builds(".".join, st.lists(st.text(ATEXT, min_size=1, max_size=6), min_size=1, max_size=3)),
    st.builds(
        lambda text: f'"{text}"',
        st.text(
            st.characters(min_codepoint=32, max_codepoint=126, exclude_characters='"\\'), max_size=8
        ),
    ),  # fmt: skip
)
LABEL = st.text(st.sampled_from(list("abcxyzABCüßéｅｘ0-")), min_size=1, max_size=10)
PLAUSIBLE_DOMAIN = st.builds(
    lambda labels, tld: ".".join([*labels, tld]),
    st.lists(LABEL, min_size=1, max_size=3),
    st.sampled_from(["com", "de", "org", "ｃｏｍ", "COM", "xn--bcherei-n2a"]),
)
ADDRESSES = st.one_of(
    st.text(),
    st.builds(lambda local, domain: f"{local}@{domain}", LOCAL_PART, DOMAIN),
    st.builds(lambda local, domain: f"{local}@{domain}", PLAUSIBLE_LOCAL, PLAUSIBLE_DOMAIN),
)


@pytest.mark.django_db
@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(typed=ADDRESSES)
@example(typed='"a\x0bb"@example.com')
@example(typed='"a b"@example.com')
@example(typed='"a\\"b"@example.com')
@example(typed="reader@Bücherei.de")
def test_a_canonical_address_makes_headers_that_parse_back_intact(typed):
    """The canonicalizer refuses an address, or every header of a confirmation email to it
    parses back: one To address, equal to it, and the Date and Message-ID still there."""
    from subscriptions.models import Subscriber

    try:
        address = canonical_email(typed)
    except ValidationError:
        event("refused")
        return
    event("accepted")
    assert address == canonical_email(address)  # canonical is a fixed point
    subscriber = Subscriber(pk=1, email=address, topics="llms")
    message = build_email(
        "confirm",
        address,
        {
            "subscriber": subscriber,
            "confirm_url": links.confirm_url(subscriber),
            "preferences_url": links.preferences_url(subscriber),
            "lifetime_days": 7,
        },
    )

    parsed = message_from_bytes(message.message().as_bytes(), policy=policy.default)

    [to] = parsed["To"].addresses
    assert isinstance(to, Address)
    assert to.addr_spec.lower() == address.lower() or (
        f'"{to.username}"@{to.domain}'.lower() == address.lower()
    )
    assert parsed["Date"] is not None and parsed["Message-ID"] is not None
    assert parsed["Subject"] == "Confirm your Paperboy digest"


# The data migration


def migrate_to(target: tuple[str, str]):
    executor = MigrationExecutor(connection)
    executor.migrate([target])
    return executor.loader.project_state([target]).apps


@pytest.fixture
def latest_schema_afterwards():
    yield
    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes())


@pytest.mark.django_db(transaction=True)
def test_migration_canonicalizes_addresses_and_marks_collisions(capsys, latest_schema_afterwards):
    old_apps = migrate_to(("subscriptions", "0002_suppression_refused_when_sent"))
    OldSubscriber = old_apps.get_model("subscriptions", "Subscriber")
    for email in [
        "victim@example.com",
        "victim@ｅxample.com",
        "reader@Bücherei.de",
        "Ada@EXAMPLE.org",
        "hidden@e\u00adxample.com",
    ]:
        OldSubscriber.objects.create(email=email, topics="llms")
    ids = dict(OldSubscriber.objects.values_list("email", "pk"))

    new_apps = migrate_to(("subscriptions", "0003_canonical_addresses"))

    Subscriber = new_apps.get_model("subscriptions", "Subscriber")
    rows = {row.pk: row for row in Subscriber.objects.all()}
    assert len(rows) == 5  # nothing merged, nothing deleted
    assert rows[ids["reader@Bücherei.de"]].email == "reader@xn--bcherei-n2a.de"
    assert rows[ids["Ada@EXAMPLE.org"]].email == "Ada@example.org"
    assert rows[ids["Ada@EXAMPLE.org"]].address_problem == ""
    first, second = rows[ids["victim@example.com"]], rows[ids["victim@ｅxample.com"]]
    assert (first.email, second.email) == ("victim@example.com", "victim@ｅxample.com")
    assert f"#{second.pk}" in first.address_problem and f"#{first.pk}" in second.address_problem
    assert "soft hyphen" in rows[ids["hidden@e\u00adxample.com"]].address_problem
    report = capsys.readouterr().out
    assert f"subscriber #{first.pk}: Same mailbox as #{second.pk}" in report
    assert "2 addresses canonicalized, 3 left for an editor" in report
