"""Genre and mood vocabularies shared by the engines and the Django forms.

Kept free of any framework import so that a form can use ``GENRE_CHOICES`` and
``MOOD_CHOICES`` directly and the engine can run outside Django.
"""

from __future__ import annotations

GENRE_CHOICES: tuple[tuple[str, str], ...] = (
    ("pop", "Pop"),
    ("rock", "Rock"),
    ("electronic", "Electronic"),
    ("hiphop", "Hip-hop"),
    ("ambient", "Ambient"),
    ("jazz", "Jazz"),
    ("lofi", "Lo-fi"),
)
GENRES: tuple[str, ...] = tuple(value for value, _label in GENRE_CHOICES)
DEFAULT_GENRE = "pop"

MOOD_CHOICES: tuple[tuple[str, str], ...] = (
    ("neutral", "Neutral"),
    ("happy", "Happy"),
    ("sad", "Sad"),
    ("energetic", "Energetic"),
    ("calm", "Calm"),
    ("dark", "Dark"),
)
MOODS: tuple[str, ...] = tuple(value for value, _label in MOOD_CHOICES)
NEUTRAL_MOOD = "neutral"

MIN_DURATION_SECONDS = 1
MAX_DURATION_SECONDS = 180
PREVIEW_SECONDS = 30

# Spellings people type that mean one of our genres.
_GENRE_ALIASES = {
    "hip-hop": "hiphop",
    "hip hop": "hiphop",
    "rap": "hiphop",
    "lo-fi": "lofi",
    "lo fi": "lofi",
    "edm": "electronic",
    "house": "electronic",
    "techno": "electronic",
}


def normalize_genre(genre: str | None) -> str:
    """Map free text to a known genre; anything unknown becomes ``DEFAULT_GENRE``."""
    key = (genre or "").strip().lower()
    key = _GENRE_ALIASES.get(key, key)
    return key if key in GENRES else DEFAULT_GENRE


def normalize_mood(mood: str | None) -> str:
    """Map free text to a known mood; anything unknown becomes ``NEUTRAL_MOOD``."""
    key = (mood or "").strip().lower()
    return key if key in MOODS else NEUTRAL_MOOD
