"""Signals other apps listen to, so `subscriptions` never imports them.

reader_confirmed(sender=Subscriber, subscriber, liked_paper_ids): a reader confirmed their
address (sent inside the confirming transaction). liked_paper_ids are the ids ticked in the
sign-up's preview, as the form sent them: this app stores the numbers and knows nothing of
papers; the digest app records them as ratings.
"""

from django.dispatch import Signal

reader_confirmed = Signal()
