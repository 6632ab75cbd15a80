from django.conf import settings
from django.db import models

from subscriptions.models import Subscriber


class Paper(models.Model):
    """A research paper, deduplicated across days and sources: arXiv id first, title key second."""

    title = models.CharField(max_length=1000)
    title_key = models.CharField(max_length=1000, unique=True, help_text="Normalized title.")
    abstract = models.TextField(blank=True)
    authors = models.JSONField(default=list, blank=True)
    author_count = models.PositiveIntegerField(null=True, blank=True)
    arxiv_id = models.CharField(max_length=32, null=True, blank=True, unique=True)
    arxiv_version = models.PositiveSmallIntegerField(null=True, blank=True)
    url = models.URLField(max_length=500, blank=True)
    pdf_url = models.URLField(max_length=500, blank=True)
    published_on = models.DateField(null=True, blank=True)
    upvotes = models.PositiveIntegerField(default=0)
    categories = models.JSONField(default=list, blank=True)
    sources = models.JSONField(default=list, blank=True, help_text="Formats it came from.")
    first_seen = models.DateTimeField(db_index=True)
    last_seen = models.DateTimeField()
    seen_count = models.PositiveIntegerField(default=1, help_text="Dumps and feeds it appeared in.")
    seen_in = models.JSONField(
        default=list, blank=True, help_text="Fingerprints of those inputs: one input counts once."
    )

    hidden = models.BooleanField(default=False, help_text="Never sent in a digest.")
    pinned = models.BooleanField(default=False, help_text="Sent first to everyone it matches.")
    edited_fields = models.JSONField(
        default=list, blank=True, help_text="Fields an editor changed; ingest leaves them alone."
    )

    class Meta:
        indexes = [models.Index(fields=["-first_seen", "-upvotes"])]

    def __str__(self) -> str:
        return self.title


class PaperAlias(models.Model):
    """The identity of a duplicate merged into `paper`: ingest files its records under `paper`."""

    title_key = models.CharField(max_length=1000, unique=True)
    arxiv_id = models.CharField(max_length=32, null=True, blank=True, unique=True)
    paper = models.ForeignKey(Paper, on_delete=models.CASCADE, related_name="aliases")

    class Meta:
        verbose_name_plural = "paper aliases"

    def __str__(self) -> str:
        return f"{self.title_key} → #{self.paper_id}"


class PaperMerge(models.Model):
    """An editor's merge of duplicates into `kept`, with what it takes to undo it: the merged-away
    papers as they were, their digest rows, the aliases moved and created, the kept paper's fields
    before and after. `kept` keeps its id even if that paper is merged away later (and restored)."""

    kept = models.ForeignKey(
        Paper, on_delete=models.DO_NOTHING, db_constraint=False, related_name="merges"
    )
    merged_at = models.DateTimeField(auto_now_add=True)
    merged_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    merged_titles = models.JSONField(default=list, help_text="Titles of the papers merged away.")
    similarity = models.FloatField(help_text="The lowest title similarity the editor was shown.")
    snapshot = models.JSONField(help_text="What the undo restores.")
    undone_at = models.DateTimeField(null=True, blank=True)
    undone_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["-merged_at"]

    def __str__(self) -> str:
        return f"Merge #{self.pk} into paper #{self.kept_id}"


class IngestRun(models.Model):
    class Status(models.TextChoices):
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"

    source = models.CharField(max_length=1000)
    format = models.CharField(max_length=16)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.RUNNING)
    started_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    records = models.PositiveIntegerField(default=0)
    created = models.PositiveIntegerField(default=0)
    updated = models.PositiveIntegerField(default=0)
    unchanged = models.PositiveIntegerField(default=0)
    rejected = models.JSONField(default=list, blank=True, help_text='[{"where": …, "why": …}]')
    rejected_count = models.PositiveIntegerField(
        default=0, help_text="All rejected records; the list keeps the first 1,000."
    )
    note = models.CharField(max_length=200, blank=True, help_text="E.g. feed not modified.")
    cut_counts = models.JSONField(
        default=dict,
        blank=True,
        help_text='Records cut at a bound, by what lost something: {"abstract": 2, "lines": 1, '
        '"links": 3, …} (texts cut at a word, links that were not http(s) dropped).',
    )
    error = models.TextField(blank=True, help_text="Why the run failed.")
    host = models.CharField(max_length=255, blank=True, help_text="Where the run's process ran.")
    pid = models.PositiveIntegerField(null=True, blank=True, help_text="That process's id.")
    heartbeat_at = models.DateTimeField(
        null=True, blank=True, help_text="The last sign of life of a running run."
    )

    class Meta:
        ordering = ["-started_at"]

    def __str__(self) -> str:
        return f"{self.source} ({self.started_at:%Y-%m-%d %H:%M})"


class FeedState(models.Model):
    """What a feed URL last answered, so an unchanged feed costs one conditional request."""

    url = models.URLField(max_length=1000, unique=True)
    etag = models.CharField(max_length=500, blank=True)
    last_modified = models.CharField(max_length=100, blank=True)
    checked_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return self.url


class DigestRun(models.Model):
    """One planning and sending round. A round that could not be planned at all (the database
    went away, ranking failed for every reader) is failed, with its reason."""

    class Status(models.TextChoices):
        RUNNING = "running", "Running"
        FINISHED = "finished", "Finished"
        FAILED = "failed", "Failed"

    status = models.CharField(max_length=16, choices=Status.choices, default=Status.RUNNING)
    error = models.TextField(blank=True, help_text="Why the round failed.")
    started_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    now = models.DateTimeField(help_text="The moment the round planned for.")
    planned = models.PositiveIntegerField(default=0)
    sent = models.PositiveIntegerField(default=0)
    skipped = models.PositiveIntegerField(default=0)
    failed = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["-started_at"]

    def __str__(self) -> str:
        return f"Digest run {self.started_at:%Y-%m-%d %H:%M}"


class Delivery(models.Model):
    """One subscriber's digest for one period; the unique pair makes sending exactly-once."""

    class Status(models.TextChoices):
        PLANNED = "planned", "Planned"
        SENDING = "sending", "Sending"
        SENT = "sent", "Sent"
        SKIPPED = "skipped", "Skipped (nothing relevant)"
        FAILED = "failed", "Failed"

    subscriber = models.ForeignKey(Subscriber, on_delete=models.CASCADE, related_name="deliveries")
    period = models.DateField(help_text="The subscriber's local date the digest is for.")
    run = models.ForeignKey(
        DigestRun, null=True, blank=True, on_delete=models.SET_NULL, related_name="deliveries"
    )
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PLANNED)
    created_at = models.DateTimeField(auto_now_add=True)
    claimed_at = models.DateTimeField(null=True, blank=True)
    claim_token = models.CharField(
        max_length=32, blank=True, help_text="Whose claim it is: checked before each handover."
    )
    sent_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(
        null=True, blank=True, help_text="When it was queued or may be retried; stalls from here."
    )
    message_id = models.CharField(max_length=255, blank=True)
    esp_message_id = models.CharField(max_length=255, blank=True)
    error = models.TextField(blank=True)
    papers = models.ManyToManyField(Paper, through="DeliveredPaper", related_name="deliveries")

    class Meta:
        verbose_name_plural = "deliveries"
        constraints = [
            models.UniqueConstraint(fields=["subscriber", "period"], name="one_delivery_per_period")
        ]
        indexes = [
            models.Index(fields=["status", "period"]),
            models.Index(fields=["status", "next_attempt_at"]),
        ]

    def __str__(self) -> str:
        return f"{self.subscriber} · {self.period}"


class DeliveredPaper(models.Model):
    delivery = models.ForeignKey(Delivery, on_delete=models.CASCADE, related_name="items")
    paper = models.ForeignKey(Paper, on_delete=models.CASCADE, related_name="delivered")
    position = models.PositiveSmallIntegerField()
    score = models.FloatField()
    pinned = models.BooleanField(default=False)
    topic = models.CharField(max_length=500, blank=True, help_text="The topic line it matched.")
    matched_terms = models.JSONField(default=list, blank=True, help_text="Words to highlight.")
    why = models.CharField(max_length=500, blank=True)

    class Meta:
        ordering = ["position"]
        constraints = [
            models.UniqueConstraint(fields=["delivery", "paper"], name="paper_once_per_delivery")
        ]

    def __str__(self) -> str:
        return f"#{self.position} {self.paper}"


class Rating(models.Model):
    """A reader's "more like this" or "less like this" on a paper: from a digest's signed links
    or pasted into "Papers like these" on the preference page (a seed). One per reader and paper:
    rating again changes it."""

    class Value(models.IntegerChoices):
        MORE = 1, "More like this"
        LESS = -1, "Less like this"

    class Source(models.TextChoices):
        EMAIL = "email", "From a digest"
        SEED = "seed", "Papers like these"
        SIGN_UP = "sign-up", "Ticked at sign-up"

    subscriber = models.ForeignKey(Subscriber, on_delete=models.CASCADE, related_name="ratings")
    paper = models.ForeignKey(Paper, on_delete=models.CASCADE, related_name="ratings")
    value = models.SmallIntegerField(choices=Value.choices)
    source = models.CharField(max_length=8, choices=Source.choices, default=Source.EMAIL)
    rated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["subscriber", "paper"], name="one_rating_per_paper")
        ]

    def __str__(self) -> str:
        return f"{self.subscriber} {self.get_value_display().lower()}: {self.paper}"


class ReaderProfile(models.Model):
    """What a reader's ratings taught (digest.matching.profile.Profile, packed), relearned off
    the request path after every rating."""

    subscriber = models.OneToOneField(
        Subscriber, on_delete=models.CASCADE, primary_key=True, related_name="reader_profile"
    )
    vectors = models.BinaryField()
    liked_titles = models.JSONField(default=list, blank=True)
    ratings_count = models.PositiveIntegerField(default=0)
    learned_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"Profile of {self.subscriber} ({self.ratings_count} ratings)"


class PaperEmbedding(models.Model):
    """A paper's sentence embedding (digest.matching.semantic), made once per version of its
    title and abstract: `text_hash` tells when that text changed, `model` which model made it."""

    paper = models.OneToOneField(
        Paper, on_delete=models.CASCADE, primary_key=True, related_name="embedding"
    )
    model = models.CharField(
        max_length=64, help_text="Which model made it, reading how many tokens (vectors.model_key)."
    )
    text_hash = models.CharField(max_length=64, help_text="sha256 of the text embedded.")
    vector = models.BinaryField(help_text="float32, unit length.")
    embedded_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"Embedding of paper #{self.paper_id}"


class TopicEmbedding(models.Model):
    """One topic line's embedding, shared by every reader who typed that line."""

    text_hash = models.CharField(max_length=64, help_text="sha256 of the topic line.")
    model = models.CharField(
        max_length=64, help_text="Which model made it, reading how many tokens (vectors.model_key)."
    )
    vector = models.BinaryField(help_text="float32, unit length.")
    embedded_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["text_hash", "model"], name="one_vector_per_line")
        ]

    def __str__(self) -> str:
        return f"Topic embedding {self.text_hash[:12]}"
