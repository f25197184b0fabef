"""Effective activity (有效活跃): a pure classifier of one chat message under a community's rules.

The classifier only looks at the message itself (and whether it repeats the sender's earlier text,
which the caller knows); caps and the cooldown are the scoring engine's business.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache

from engagement.scoring.rules import ScoringRules

_URL = re.compile(r"(https?://|www\.)\S+", re.IGNORECASE)
_SPACE = re.compile(r"\s+")


@dataclass(frozen=True)
class Classification:
    rule_type: str  # effective_message, share_with_intro, bare_link, noise
    reason: str  # why, in words a member can read
    strike: str | None = None  # a rule-enforcement strike (群规): bare_link, ad, repeat


@lru_cache(maxsize=256)
def _compiled(patterns: tuple[str, ...]) -> tuple[re.Pattern[str], ...]:
    return tuple(re.compile(p, re.IGNORECASE) for p in patterns)


def normalise(text: str) -> str:
    return _SPACE.sub(" ", unicodedata.normalize("NFKC", text)).strip()


def text_hash(text: str) -> str:
    """Identity of a message's text for repeat detection (case- and spacing-insensitive)."""
    return hashlib.sha1(normalise(text).lower().encode()).hexdigest()[:16]


def _only_symbols(text: str) -> bool:
    """True when the text is made of emoji, punctuation and symbols only (a sticker war in text)."""
    return bool(text) and all(unicodedata.category(ch)[0] in "SPZC" for ch in text)


def classify_message(
    rules: ScoringRules,
    *,
    text: str,
    links: list[str],
    media_kind: str,
    repeated: bool,
    forwarded: bool = False,
) -> Classification:
    body = normalise(text)
    for pattern in _compiled(tuple(rules.ad_patterns)):
        if pattern.search(body):
            return Classification("noise", f"advertising ({pattern.pattern})", strike="ad")
    has_link = bool(links) or bool(_URL.search(body)) or media_kind == "link_card"
    if has_link:
        intro = normalise(_URL.sub(" ", body))
        for link in links:
            intro = normalise(intro.replace(link, " "))
        if len(intro) >= rules.intro_min_length:
            return Classification("share_with_intro", "shared a link with an introduction")
        return Classification(
            "bare_link", f"a link without an introduction (needs {rules.intro_min_length}+ characters)",
            strike="bare_link",
        )
    if media_kind in ("sticker", "emoji") or (not body and media_kind == "none") or _only_symbols(body):
        return Classification("noise", "sticker or emoji only")
    if repeated:
        return Classification("noise", "repeats an earlier message of the same day", strike="repeat")
    for pattern in _compiled(tuple(rules.noise_patterns)):
        if pattern.search(body):
            return Classification("noise", "greeting or chatter (noise pattern)")
    if media_kind != "none" and len(body) < rules.min_length:
        return Classification("noise", f"{media_kind} without text")
    if len(body) < rules.min_length:
        return Classification("noise", f"shorter than {rules.min_length} characters")
    if rules.keywords:
        lowered = body.lower()
        if not any(k.lower() in lowered for k in rules.keywords):
            return Classification("noise", "off the community's positioning (no keyword)")
        return Classification("effective_message", "on-topic message (keyword)")
    return Classification("effective_message", "effective message")
