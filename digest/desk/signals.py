"""What an editor asks the desk to have done now. The desk never imports digest.tasks: the
receivers that queue the work are in digest/admin.py (an edge); a broker outage
reaches the sender as the receiver's exception (BROKER_DOWN), so the page can say so."""

from django.dispatch import Signal

# "Run ingest now" on the ingest runs page.
ingest_requested = Signal()
# Failed deliveries reset to planned by an editor: `delivery_ids`, to be sent again.
resend_requested = Signal()
