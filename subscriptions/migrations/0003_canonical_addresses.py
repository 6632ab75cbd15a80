"""Store every address in its canonical spelling (subscriptions.addresses).

Rows whose canonical spellings collide (`victim@example.com` and `victim@ｅxample.com`) are two
sign-ups that may hold two people's consent: they are left as they are, marked in
`address_problem` and reported, for an editor to resolve; never merged here. So are addresses
that have no canonical form (an invisible character, say).
"""

import logging
from collections import defaultdict

from django.core.exceptions import ValidationError
from django.db import migrations, models

from subscriptions.addresses import canonical_email

logger = logging.getLogger("subscriptions.migrations")


def canonicalize_addresses(apps, schema_editor) -> None:
    Subscriber = apps.get_model("subscriptions", "Subscriber")
    by_key: dict[str, list[tuple[int, str, str]]] = defaultdict(list)  # (pk, stored, canonical)
    problems: dict[int, str] = {}
    for pk, email in Subscriber.objects.values_list("pk", "email").iterator(chunk_size=2000):
        try:
            canonical = canonical_email(email)
        except ValidationError as error:
            problems[pk] = f"No canonical form: {' '.join(error.messages)}"[:300]
            continue
        by_key[canonical.lower()].append((pk, email, canonical))
    renamed = []
    for rows in by_key.values():
        if len(rows) == 1:
            [(pk, email, canonical)] = rows
            if email != canonical:
                renamed.append(Subscriber(pk=pk, email=canonical))
            continue
        for pk, _email, canonical in rows:
            others = ", ".join(f"#{other}" for other, _, _ in rows if other != pk)
            problems[pk] = f"Same mailbox as {others} ({canonical}): left unmerged."[:300]
    Subscriber.objects.bulk_update(renamed, ["email"], batch_size=1000)
    for pk, problem in problems.items():
        Subscriber.objects.filter(pk=pk).update(address_problem=problem)
        message = f"subscriber #{pk}: {problem}"
        logger.warning("Canonical addresses: %s", message)
        print(f"\n  {message}", end="")
    if renamed or problems:
        print(f"\n  {len(renamed)} addresses canonicalized, {len(problems)} left for an editor.")


class Migration(migrations.Migration):
    dependencies = [
        ("subscriptions", "0002_suppression_refused_when_sent"),
    ]

    operations = [
        migrations.AddField(
            model_name="subscriber",
            name="address_problem",
            field=models.CharField(
                blank=True,
                help_text="Why this address could not be made canonical (set by a migration; the "
                "row was left as it was, for an editor to resolve).",
                max_length=300,
            ),
        ),
        migrations.AlterField(
            model_name="subscriber",
            name="email",
            field=models.EmailField(
                help_text="Canonical: NFKC, the domain lower-cased and in IDNA form.",
                max_length=254,
            ),
        ),
        migrations.RunPython(canonicalize_addresses, migrations.RunPython.noop, elidable=True),
    ]
