"""/feed/: an Atom feed of the newest listing day's papers (the papers of /today/), each with its
authors, upvotes and when it was first seen, through Django's syndication framework."""

from datetime import UTC

from django.contrib.syndication.views import Feed
from django.urls import reverse
from django.utils.feedgenerator import Atom1Feed
from django.utils.html import format_html, format_html_join, linebreaks

from digest.web.daily import ListedPaper, newest_day, papers_of_day

FEED_AUTHORS = 20  # an entry names this many authors, then "et al."


class DayFeed(Feed):
    feed_type = Atom1Feed
    title = "Paperboy: today's trending research papers"
    subtitle = "The most upvoted research papers of the newest daily listing, by upvotes."
    author_name = "Paperboy"

    def link(self) -> str:
        return reverse("digest:today")

    def feed_url(self) -> str:
        return reverse("digest:feed")

    def items(self) -> list[ListedPaper]:
        day = newest_day()
        return papers_of_day(day) if day else []

    def item_title(self, paper: ListedPaper) -> str:
        return f"{paper.title} (▲ {paper.upvotes})"

    def item_link(self, paper: ListedPaper) -> str:
        return reverse("digest:paper", kwargs={"paper_id": paper.pk})

    def item_guid(self, paper: ListedPaper) -> str:
        return reverse("digest:paper", kwargs={"paper_id": paper.pk})

    def item_author_name(self, paper: ListedPaper) -> str | None:
        if not paper.authors:
            return None
        names = ", ".join(paper.authors[:FEED_AUTHORS])
        return names + (" et al." if len(paper.authors) > FEED_AUTHORS else "")

    def item_pubdate(self, paper: ListedPaper):
        return paper.first_seen

    def item_updateddate(self, paper: ListedPaper):
        return paper.first_seen

    def item_categories(self, paper: ListedPaper) -> list[str]:
        return [f"upvotes:{paper.upvotes}"]

    def item_description(self, paper: ListedPaper) -> str:
        places = ((paper.read_url, "Read it"), (paper.pdf_url, "PDF"))
        links = [(url, label) for url, label in places if url]
        return format_html(
            "<p>▲ {} upvote{} · first seen {} UTC{}</p>{}<p>{}</p>",
            paper.upvotes,
            "" if paper.upvotes == 1 else "s",
            paper.first_seen.astimezone(UTC).strftime("%Y-%m-%d %H:%M"),
            format_html(" · {}", paper.authors_short) if paper.authors else "",
            linebreaks(paper.abstract, autoescape=True) if paper.abstract else "",
            format_html_join(" · ", '<a href="{}">{}</a>', links),
        )
