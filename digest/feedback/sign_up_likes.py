"""The papers a reader ticked in the sign-up's preview become their first ratings ("more like
this", source "sign-up") when they confirm: the same ratings a digest's links record, so the
same profile learns from them, in words and in meaning (digest.matching.vectors.liked_vectors)."""

from __future__ import annotations

from collections.abc import Sequence

from digest.models import Paper, Rating


def record_sign_up_likes(subscriber_id: int, paper_ids: Sequence[int]) -> int:
    """Rate up the ticked papers that exist and are visible; a paper the reader already rated
    keeps its rating. Returns how many ratings were added."""
    ids = [paper_id for paper_id in paper_ids if isinstance(paper_id, int)]
    if not ids:
        return 0
    visible = Paper.objects.filter(id__in=ids, hidden=False).values_list("id", flat=True)
    rated = set(
        Rating.objects.filter(subscriber_id=subscriber_id).values_list("paper_id", flat=True)
    )
    new = [
        Rating(
            subscriber_id=subscriber_id,
            paper_id=paper_id,
            value=Rating.Value.MORE,
            source=Rating.Source.SIGN_UP,
        )
        for paper_id in visible
        if paper_id not in rated
    ]
    Rating.objects.bulk_create(new, ignore_conflicts=True)
    return len(new)
