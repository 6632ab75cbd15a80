"""One canonical spelling per mailbox, so variants of an address are one reader.

Ours, not email-validator: it would stand in for the two calls made here (Django's validate_email
and idna's UTS 46 encoding, the library email-validator itself uses) but normalises with NFC, not
NFKC, and does not name the invisible character it refuses; the canonical form is what we need.

`canonical_email` is applied at every door an address comes in by (the sign-up form,
`import_subscribers`, webhook lookups, the admin's search): NFKC (fullwidth "ｅ" is "e"), the
domain lower-cased and in its IDNA (punycode) form, a trailing root dot dropped. Addresses with
invisible or control characters are refused, not cleaned: a soft hyphen or a zero-width joiner
makes a spelling that looks like someone else's address, and a control character in a quoted
local part breaks the headers of every email sent to it.

The canonical form is what is stored, looked up, rate-limited and mailed (an ASCII domain needs
no SMTPUTF8 anywhere on the way); `display_email` turns it back into the Unicode spelling a reader
recognises. The local part keeps its case (the mailbox owner's business) and is compared without
it, as the unique index on lower(email) does.
"""

import unicodedata

import idna
from django.core.exceptions import ValidationError
from django.core.validators import validate_email

MAX_LENGTH = 254  # RFC 5321's limit for a path, and Subscriber.email's
# Invisible or direction-changing characters that make one address look like another.
INVISIBLE = {
    "\u00ad": "soft hyphen",
    "\u034f": "combining grapheme joiner",
    "\u061c": "Arabic letter mark",
    "\u180e": "Mongolian vowel separator",
    "\u200b": "zero-width space",
    "\u200c": "zero-width non-joiner",
    "\u200d": "zero-width joiner",
    "\u200e": "left-to-right mark",
    "\u200f": "right-to-left mark",
    "\u2060": "word joiner",
    "\ufeff": "zero-width no-break space",
    **{chr(code): "bidirectional control" for code in range(0x202A, 0x202F)},
    **{chr(code): "bidirectional control" for code in range(0x2066, 0x206A)},
}


def _refuse_hidden_characters(text: str) -> None:
    for position, char in enumerate(text, start=1):
        name = INVISIBLE.get(char)
        if name is None and unicodedata.category(char) in ("Cc", "Cf", "Cs", "Co", "Cn"):
            name = "control character" if unicodedata.category(char) == "Cc" else "format character"
        if name is not None:
            raise ValidationError(
                "This address contains an invisible or control character (%(name)s, "
                "U+%(code)04X, at position %(position)d): type it again without it.",
                code="invisible_character",
                params={"name": name, "code": ord(char), "position": position},
            )


def canonical_email(address: str) -> str:
    """The canonical spelling of `address`; ValidationError says what is wrong with it."""
    address = address.strip()
    _refuse_hidden_characters(address)
    address = unicodedata.normalize("NFKC", address)
    _refuse_hidden_characters(address)  # NFKC maps a few characters onto controls
    local, at, domain = address.rpartition("@")
    if not at or not local or not domain:
        raise ValidationError("Enter a valid email address.", code="invalid")
    domain = domain.lower().removesuffix(".")
    try:
        domain = idna.encode(domain, uts46=True).decode("ascii")
    except idna.IDNAError as error:
        raise ValidationError(
            "The domain %(domain)s is not a valid domain name (%(reason)s).",
            code="invalid_domain",
            params={"domain": domain, "reason": error},
        ) from error
    canonical = f"{local}@{domain}"
    validate_email(canonical)
    if len(canonical) > MAX_LENGTH:
        raise ValidationError(
            "Ensure this address has at most %(limit)d characters (it has %(length)d, its "
            "domain in IDNA form).",
            code="too_long",
            params={"limit": MAX_LENGTH, "length": len(canonical)},
        )
    return canonical


def lookup_key(address: str) -> str:
    """What an address is compared by (the unique index is on lower(email)): its canonical form,
    or for one that has none (an ESP reporting an address we could never have stored), itself."""
    try:
        return canonical_email(address).lower()
    except ValidationError:
        return address.strip().lower()


def display_email(address: str) -> str:
    """The Unicode spelling of a canonical address, for the reader's eyes only."""
    local, at, domain = address.rpartition("@")
    if not at or "xn--" not in domain:
        return address
    try:
        return f"{local}@{idna.decode(domain)}"
    except idna.IDNAError:
        return address
