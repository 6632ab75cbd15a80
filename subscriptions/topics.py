"""How readers type their topics: one list, whatever separates it (no ORM, used by the form,
the import, the admin and digest's ranking alike)."""

import re

TOPIC_SEPARATORS = re.compile(r"[,;\uff0c\uff1b]")


def split_topics(text: str) -> list[str]:
    """The topics (and '-word' exclusions) typed in `text`, in order, each with its whitespace
    collapsed; blank ones dropped. Joining them with any separator and splitting again gives
    the same list."""
    topics = []
    for line in text.splitlines():
        for part in TOPIC_SEPARATORS.split(line):
            topic = " ".join(part.split())
            if topic:
                topics.append(topic)
    return topics
