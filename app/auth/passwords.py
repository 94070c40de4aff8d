"""The password policy for new passwords: sign-up, password change and ``flask user create``.

Following NIST SP 800-63B: a minimum length, no composition rules, and a refusal of passwords
an attacker tries first. ``common-passwords.txt`` is the list Django 5.2 ships
(``django/contrib/auth/common-passwords.txt.gz``, BSD licence): the 20,000 most common
passwords from breach corpora compiled by Royce Williams, lower-cased and deduplicated, most
common first; 19,640 remain after deduplication.
"""

from __future__ import annotations

import re
import unicodedata
from itertools import pairwise
from pathlib import Path

from app.text import gettext

MIN_LENGTH = 8
MAX_LENGTH = 1024

COMMON_PASSWORDS_FILE = Path(__file__).with_name("common-passwords.txt")

# Runs that guessing tools walk: the alphabet, digits and keyboard rows (US, German and
# French layouts). A step to a neighbour in either direction continues a pattern.
_SEQUENCES = (
    "abcdefghijklmnopqrstuvwxyz",
    "01234567890",
    "`1234567890-=",
    "qwertyuiop[]",
    "asdfghjkl;'",
    "zxcvbnm,./",
    "qwertzuiopü",
    "asdfghjklöä",
    "yxcvbnm,.-",
    "azertyuiop",
    "qsdfghjklm",
    "wxcvbn,;:!",
)
_NEIGHBOURS = frozenset(
    pair for sequence in _SEQUENCES for a, b in pairwise(sequence) for pair in ((a, b), (b, a))
)
# The whole password is one short unit said again and again ("abcabcabc", "passpass").
_REPEATED_UNIT = re.compile(r"(.+?)\1+", re.DOTALL)
# What people put around a word to satisfy a rule: "Password1!", "2024dragon".
_PADDING = "0123456789!@#$%^&*()-_=+.,;:?~ "


def _load_common() -> frozenset[str]:
    """The common passwords, lower-cased; read once, at import."""
    with COMMON_PASSWORDS_FILE.open(encoding="utf-8") as lines:
        return frozenset(stripped for line in lines if (stripped := line.strip().lower()))


COMMON_PASSWORDS = _load_common()


def _fold(text: str) -> str:
    """Compare as a guessing tool would: compatibility-normalised and case-folded."""
    return unicodedata.normalize("NFKC", text).casefold().strip()


def is_common(password: str) -> bool:
    """Whether the password, or the word inside digits and symbols around it, is common."""
    folded = _fold(password)
    core = folded.strip(_PADDING)
    return folded in COMMON_PASSWORDS or (len(core) >= 4 and core in COMMON_PASSWORDS)


def is_pattern(password: str) -> bool:
    """Whether the password is repetitive or sequential.

    That is: one short unit repeated, fewer than four different characters, or at most three
    runs of repeated characters, sequences and keyboard neighbours ("aaaa1234", "abcd1234efgh").
    """
    folded = _fold(password)
    repeated = _REPEATED_UNIT.fullmatch(folded)
    if repeated and len(repeated.group(1)) < MIN_LENGTH:
        return True
    if len(set(folded)) < 4:
        return True
    breaks = sum(1 for a, b in pairwise(folded) if a != b and (a, b) not in _NEIGHBOURS)
    return breaks <= 2


def is_email(password: str, email: str | None) -> bool:
    """Whether the password is the email address or its part before the ``@``."""
    if not email:
        return False
    folded = _fold(password)
    address = _fold(email)
    local = address.partition("@")[0]
    return folded in {address, local} or (bool(local) and folded.strip(_PADDING) == local)


def rules() -> list[str]:
    """The policy as the sign-up and password pages show it, before anything is typed."""
    return [
        gettext("Use at least %(min)d characters.", min=MIN_LENGTH),
        gettext("Don't use a common password or a pattern such as 12345678, aaaaaaaa or qwertyui."),
        gettext("Don't use your email address."),
    ]


def problems(password: str, email: str | None = None) -> list[str]:
    """What is wrong with ``password`` as a new password of ``email``, in the user's language.

    An empty list means it is acceptable. Of the ways to be guessable only the most telling
    is reported, so "12345678" is called common, not also a sequence.
    """
    if len(password) < MIN_LENGTH:
        return [gettext("Use at least %(min)d characters.", min=MIN_LENGTH)]
    if len(password) > MAX_LENGTH:
        return [gettext("Use at most %(max)d characters.", max=MAX_LENGTH)]
    if is_email(password, email):
        return [gettext("Don't use your email address as your password.")]
    if is_common(password):
        return [gettext("This password is too common. Choose one that is harder to guess.")]
    if is_pattern(password):
        return [
            gettext(
                "This password is too easy to guess: avoid repeated characters, sequences "
                "and keyboard patterns."
            )
        ]
    return []
