"""Just enough music theory: keys, scales, diatonic chords and progressions."""

from __future__ import annotations

from dataclasses import dataclass

NOTE_NAMES = ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")

SCALES: dict[str, tuple[int, ...]] = {
    "major": (0, 2, 4, 5, 7, 9, 11),
    "minor": (0, 2, 3, 5, 7, 8, 10),
    "dorian": (0, 2, 3, 5, 7, 9, 10),
    "mixolydian": (0, 2, 4, 5, 7, 9, 10),
    "phrygian": (0, 1, 3, 5, 7, 8, 10),
}

# Which of "major"/"minor" a scale sounds like, for the key's display name.
_QUALITY = {
    "major": "major",
    "mixolydian": "major",
    "minor": "minor",
    "dorian": "minor",
    "phrygian": "minor",
}


def midi_to_hz(midi: float) -> float:
    return 440.0 * 2.0 ** ((midi - 69) / 12.0)


@dataclass(frozen=True, slots=True)
class Key:
    tonic: int
    """Pitch class of the tonic, 0 = C."""
    scale: str

    @property
    def name(self) -> str:
        return f"{NOTE_NAMES[self.tonic % 12]} {_QUALITY[self.scale]}"

    @property
    def steps(self) -> tuple[int, ...]:
        return SCALES[self.scale]

    def degree_to_midi(self, degree: int, octave_base: int) -> int:
        """MIDI note of scale ``degree`` (0-based, may be negative or above 6), where
        degree 0 is the tonic in the octave starting at MIDI ``octave_base``."""
        octave, index = divmod(degree, 7)
        return octave_base + self.tonic + 12 * octave + self.steps[index]

    def chord(self, root_degree: int, size: int = 3) -> tuple[int, ...]:
        """Scale degrees of the diatonic chord stacked in thirds on ``root_degree``."""
        return tuple(root_degree + 2 * i for i in range(size))


# Progressions as 0-based scale degrees, one chord per bar. "verse" and "chorus"
# lists are alternatives; the composer picks one of each so that sections contrast.
PROGRESSIONS: dict[str, dict[str, tuple[tuple[int, ...], ...]]] = {
    "major": {
        "verse": ((0, 4, 5, 3), (0, 5, 3, 4), (0, 3, 0, 4), (5, 3, 0, 4)),
        "chorus": ((3, 4, 0, 5), (0, 4, 5, 3), (3, 0, 4, 4), (5, 3, 0, 4)),
        "bridge": ((5, 3, 4, 4), (1, 4, 0, 5), (3, 4, 5, 4)),
    },
    "minor": {
        "verse": ((0, 5, 2, 6), (0, 3, 4, 0), (0, 6, 5, 4), (0, 0, 5, 6)),
        "chorus": ((5, 6, 0, 0), (5, 2, 6, 0), (0, 5, 2, 6), (3, 5, 6, 0)),
        "bridge": ((3, 4, 5, 6), (5, 3, 6, 4), (2, 5, 3, 4)),
    },
    # Jazz and lo-fi lean on ii-V-I motion and seventh chords.
    "jazz": {
        "verse": ((1, 4, 0, 0), (0, 5, 1, 4), (2, 5, 1, 4), (3, 2, 1, 0)),
        "chorus": ((3, 2, 1, 4), (1, 4, 0, 5), (0, 5, 1, 4)),
        "bridge": ((4, 3, 2, 5), (3, 6, 2, 5)),
    },
}


def pick_progression_family(genre: str, quality: str) -> str:
    if genre in ("jazz", "lofi"):
        return "jazz"
    return "minor" if quality == "minor" else "major"


def key_quality(scale: str) -> str:
    return _QUALITY[scale]
