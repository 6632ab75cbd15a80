"""Thin views over subscriptions.consent: sign-up, confirm, preferences, unsubscribe, erase."""

from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from subscriptions import addresses, consent, links, pauses, send_times, tasks, throttling
from subscriptions.forms import PreferencesForm, SignUpForm
from subscriptions.models import Subscriber, SuppressionEvent
from subscriptions.preference_sections import (
    render_confirmation_sections,
    render_preference_sections,
)

SIGNED_UP_COOKIE = "signed_up"
SIGNED_UP_SECONDS = 60 * 60
LINK_ERROR_STATUS = {"tampered": 400, "gone": 404, "expired": 410, "used": 410}
REASONS = [
    ("", "Rather not say"),
    ("too many emails", "Too many emails"),
    ("not relevant", "The papers are not relevant to me"),
    ("never signed up", "I never signed up"),
    ("other", "Something else"),
]


def _with_subscriber(purpose: str) -> Callable:
    """Open the signed link in the URL, or show what is wrong with it (never a 500)."""

    def decorate(view: Callable) -> Callable:
        def wrapped(request: HttpRequest, token: str) -> HttpResponse:
            try:
                subscriber = links.read_token(token, purpose)
            except links.InvalidLink as error:
                return render(
                    request,
                    "pages/link_invalid.html",
                    {"reason": error.reason, "purpose": purpose},
                    status=LINK_ERROR_STATUS[error.reason],
                )
            return view(request, subscriber, token)

        wrapped.__name__ = view.__name__
        wrapped.__doc__ = view.__doc__
        return wrapped

    return decorate


@require_http_methods(["GET", "POST"])
def sign_up(request: HttpRequest) -> HttpResponse:
    if request.method == "GET":
        return render(request, "pages/sign_up.html", {"form": SignUpForm()})
    form = SignUpForm(request.POST)
    if form.is_bot:  # look like success, do nothing
        return _check_inbox_for(request, request.POST.get("email", "")[:254])
    ip = throttling.client_ip(request)
    if not throttling.allow("sign-up-ip", ip, limit=settings.SIGNUP_LIMIT_PER_IP):
        return render(request, "pages/throttled.html", status=429)
    if not form.is_valid():
        return render(request, "pages/sign_up.html", {"form": form}, status=400)
    email = form.cleaned_data["email"]
    if not throttling.allow("sign-up-address", email, limit=settings.SIGNUP_LIMIT_PER_ADDRESS):
        return render(request, "pages/throttled.html", status=429)
    consent.sign_up(
        consent.SignUp(
            email=email,
            preferences=form.preferences(),
            ip=ip or None,
            consent_text=form.consent_text,
            liked_paper_ids=tuple(form.liked_paper_ids()),
        )
    )
    tasks.queue_consent_emails()
    return _check_inbox_for(request, addresses.display_email(email))


def _check_inbox_for(request: HttpRequest, email: str) -> HttpResponse:
    """Redirect to "check your inbox", which repeats the address (so a typo shows) from a signed
    cookie: it stays out of the URL, and no other page can make it say another address."""
    response = redirect("subscriptions:check_inbox")
    response.set_signed_cookie(
        SIGNED_UP_COOKIE,
        email,
        salt=SIGNED_UP_COOKIE,
        max_age=SIGNED_UP_SECONDS,
        secure=request.is_secure(),
        httponly=True,
        samesite="Lax",
    )
    return response


def check_inbox(request: HttpRequest) -> HttpResponse:
    email = request.get_signed_cookie(
        SIGNED_UP_COOKIE, default="", salt=SIGNED_UP_COOKIE, max_age=SIGNED_UP_SECONDS
    )
    return render(request, "pages/check_inbox.html", {"email": email})


@require_http_methods(["GET", "POST"])
@_with_subscriber("confirm")
def confirm(request: HttpRequest, subscriber: Subscriber, token: str) -> HttpResponse:
    """GET asks (link scanners follow GETs); the button's POST confirms."""
    if request.method == "POST":
        ip = throttling.client_ip(request)
        consent.confirm(
            subscriber,
            sign_up_request_id=links.sign_up_request_id(token),
            ip=ip or None,
            consent_text=SignUpForm.consent_text,
        )
        return render(
            request,
            "pages/confirmed.html",
            {
                "subscriber": subscriber,
                "first_digest": send_times.first_digest_text(subscriber, timezone.now()),
                "preferences_url": links.preferences_url(subscriber),
                "sections": render_confirmation_sections(request, subscriber),
            },
        )
    context = {"subscriber": subscriber, "consent_text": SignUpForm.consent_text}
    return render(request, "pages/confirm.html", context)


@require_http_methods(["GET", "POST"])
@_with_subscriber("preferences")
def preferences(request: HttpRequest, subscriber: Subscriber, token: str) -> HttpResponse:
    notice = ""
    form = PreferencesForm.for_subscriber(subscriber)
    action = request.POST.get("action", "save")
    if request.method == "POST" and action == "pause":
        pauses.pause(subscriber)
        notice = "Paused: no digests until you resume."
    elif request.method == "POST" and action == "resume":
        pauses.resume(subscriber)
        notice = "Resumed: your next digest arrives at your usual time."
    elif request.method == "POST" and action == "resubscribe":
        if consent.resubscribe(subscriber):
            tasks.queue_consent_emails()
            notice = (
                f"Check your inbox: we sent {subscriber.display_email} a link to confirm. Your "
                "digest starts again once you press its button."
            )
        else:
            notice = (
                "We sent a confirmation link to this address within the hour: look for it in "
                "your inbox (or spam folder) and press its button."
            )
    elif request.method == "POST":
        form = PreferencesForm.for_subscriber(subscriber, request.POST)
        if form.is_valid():
            consent.update_preferences(subscriber, form.cleaned_data)
            notice = "Saved. Your next digest uses these preferences."
            form = PreferencesForm.for_subscriber(subscriber)
    return render(
        request,
        "pages/preferences.html",
        {
            "subscriber": subscriber,
            "form": form,
            "notice": notice,
            "token": token,
            "sections": render_preference_sections(request, subscriber, token),
            "consent_text": SignUpForm.consent_text,
            "unsubscribe_url": reverse(
                "subscriptions:unsubscribe",
                kwargs={"token": links.make_token(subscriber, "unsubscribe")},
            ),
        },
        status=400 if form.errors else 200,
    )


@require_http_methods(["GET", "POST"])
@_with_subscriber("preferences")
def erase(request: HttpRequest, subscriber: Subscriber, token: str) -> HttpResponse:
    if request.method == "POST":
        consent.erase(subscriber, source=SuppressionEvent.Source.LINK)
        return render(request, "pages/erased.html")
    return render(request, "pages/erase.html", {"subscriber": subscriber, "token": token})


@require_http_methods(["GET", "POST"])
@_with_subscriber("unsubscribe")
def unsubscribe(request: HttpRequest, subscriber: Subscriber, token: str) -> HttpResponse:
    """The leave page: pause for a month, weekly instead of daily, or unsubscribe (with a
    receipt by email). The List-Unsubscribe one-click POST stays immediate (below)."""
    action = request.POST.get("action", "unsubscribe")
    if request.method == "POST" and action in ("pause", "weekly"):
        if action == "pause":
            pauses.pause_for_a_month(subscriber)
        else:
            pauses.switch_to_weekly(subscriber, _weekday_from(request.POST, subscriber.weekday))
        preferences_url = links.preferences_url(subscriber)
        context = {"subscriber": subscriber, "kept": action, "preferences_url": preferences_url}
        return render(request, "pages/unsubscribe_kept.html", context)
    if request.method == "POST":
        reason = request.POST.get("reason", "")
        reason = reason if reason in dict(REASONS) else ""
        source = SuppressionEvent.Source.LINK
        if consent.unsubscribe(subscriber, source=source, reason=reason, receipt=True):
            tasks.queue_consent_emails()
        context = {"subscriber": subscriber, "preferences_url": links.preferences_url(subscriber)}
        return render(request, "pages/unsubscribed.html", context)
    context = {
        "subscriber": subscriber,
        "reasons": REASONS,
        "weekdays": Subscriber.Weekday.choices,
        "preferences_url": links.preferences_url(subscriber),
    }
    return render(request, "pages/unsubscribe.html", context)


def _weekday_from(data, default: int) -> int:
    value = data.get("weekday", "")
    return int(value) if value in {str(day) for day in Subscriber.Weekday.values} else default


@csrf_exempt
@require_http_methods(["GET", "POST"])
def one_click_unsubscribe(request: HttpRequest, token: str) -> HttpResponse:
    """RFC 8058: a mailbox provider POSTs `List-Unsubscribe=One-Click`, with no cookies and no
    CSRF token, and the unsubscribe takes effect at once. A person opening it gets the page."""
    if request.method == "GET":
        return redirect("subscriptions:unsubscribe", token=token)
    if request.POST.get("List-Unsubscribe") != "One-Click":
        return HttpResponseBadRequest(
            "Expected List-Unsubscribe=One-Click.\n", content_type="text/plain"
        )
    try:
        subscriber = links.read_token(token, "unsubscribe")
    except links.InvalidLink as error:
        return HttpResponse(
            f"Invalid unsubscribe link ({error.reason}).\n",
            content_type="text/plain",
            status=LINK_ERROR_STATUS[error.reason],
        )
    consent.unsubscribe(subscriber, source=SuppressionEvent.Source.ONE_CLICK)
    return HttpResponse("Unsubscribed.\n", content_type="text/plain")
