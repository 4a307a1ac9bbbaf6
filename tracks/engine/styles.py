"""How each genre and mood sounds: tempi, grooves, instruments and levels."""

from __future__ import annotations

from dataclasses import dataclass, field

from .drums import KitSettings
from .synth import Timbre

# Drum patterns on a 16-step bar. X = accent, x = normal, o = ghost note.
Pattern = dict[str, str]

VELOCITY = {"X": 1.0, "x": 0.75, "o": 0.35}


@dataclass(frozen=True, slots=True)
class Style:
    tempo: tuple[int, int]
    swing: float = 0.5
    """Where the off-beat lands within its pair: 0.5 is straight, 0.66 a triplet shuffle."""
    swing_sixteenths: bool = False
    """Swing 16th notes (hip-hop) instead of 8th notes (jazz)."""
    verse_drums: Pattern | None = None
    chorus_drums: Pattern | None = None
    kit: KitSettings = field(default_factory=KitSettings)
    bass: str = "root"
    bass_timbre: Timbre = field(default_factory=Timbre)
    bass_octave: int = 36
    harmony: str = "pad"
    harmony_timbre: Timbre = field(default_factory=Timbre)
    harmony_octave: int = 55
    pad_in_chorus: bool = False
    pad_timbre: Timbre | None = None
    lead_timbre: Timbre = field(default_factory=Timbre)
    lead_octave: int = 67
    melody_density: float = 0.5
    arp: bool = False
    arp_timbre: Timbre | None = None
    sevenths: bool = False
    scales: tuple[str, str] = ("major", "minor")
    """Scale for a major mood and for a minor one."""
    reverb: float = 0.15
    sidechain: float = 0.0
    lofi: bool = False
    levels: dict[str, float] = field(default_factory=dict)


PAD = Timbre(
    harmonics=(1.0, 0.5, 0.33, 0.25, 0.2, 0.16),
    attack=0.35,
    decay=1.0,
    sustain=0.8,
    release=0.6,
    detune_cents=9.0,
    gain=0.7,
)
SOFT_PAD = Timbre(
    harmonics=(1.0, 0.3, 0.12, 0.05),
    attack=1.2,
    decay=2.0,
    sustain=0.9,
    release=2.0,
    detune_cents=6.0,
    gain=0.7,
)
PIANO = Timbre(
    harmonics=(1.0, 0.6, 0.35, 0.2, 0.12, 0.08, 0.05),
    attack=0.003,
    decay=0.6,
    sustain=0.15,
    release=0.25,
    harmonic_decay=2.5,
)
EPIANO = Timbre(
    harmonics=(1.0, 0.15, 0.05, 0.25, 0.0, 0.04),
    attack=0.004,
    decay=0.9,
    sustain=0.25,
    release=0.3,
    harmonic_decay=3.0,
    detune_cents=4.0,
)
GUITAR = Timbre(
    harmonics=(1.0, 0.5, 0.33, 0.25, 0.2, 0.16, 0.14, 0.12),
    attack=0.004,
    decay=0.5,
    sustain=0.6,
    release=0.08,
    harmonic_decay=0.8,
    drive=4.0,
    detune_cents=7.0,
    gain=0.6,
)
BASS = Timbre(
    harmonics=(1.0, 0.45, 0.2, 0.1),
    attack=0.004,
    decay=0.25,
    sustain=0.6,
    release=0.06,
    harmonic_decay=3.0,
)
ROCK_BASS = Timbre(
    harmonics=(1.0, 0.6, 0.4, 0.25, 0.15),
    attack=0.003,
    decay=0.2,
    sustain=0.7,
    release=0.05,
    harmonic_decay=2.0,
    drive=1.5,
)
SUB_BASS = Timbre(
    harmonics=(1.0, 0.1),
    attack=0.004,
    decay=0.6,
    sustain=0.5,
    release=0.12,
    drive=1.2,
)
SYNTH_BASS = Timbre(
    harmonics=(1.0, 0.5, 0.33, 0.25, 0.2),
    attack=0.003,
    decay=0.12,
    sustain=0.4,
    release=0.04,
    harmonic_decay=6.0,
)
UPRIGHT = Timbre(
    harmonics=(1.0, 0.35, 0.1, 0.05),
    attack=0.01,
    decay=0.35,
    sustain=0.25,
    release=0.1,
    harmonic_decay=4.0,
)
LEAD = Timbre(
    harmonics=(1.0, 0.0, 0.3, 0.0, 0.15, 0.0, 0.08),
    attack=0.02,
    decay=0.3,
    sustain=0.7,
    release=0.15,
    detune_cents=5.0,
    gain=0.8,
)
BELL = Timbre(
    harmonics=(1.0, 0.0, 0.0, 0.4, 0.0, 0.0, 0.0, 0.2),
    attack=0.005,
    decay=1.2,
    sustain=0.1,
    release=1.0,
    harmonic_decay=1.5,
)
PLUCK = Timbre(
    harmonics=(1.0, 0.5, 0.33, 0.25, 0.2, 0.16),
    attack=0.002,
    decay=0.12,
    sustain=0.05,
    release=0.08,
    harmonic_decay=8.0,
)
GUITAR_LEAD = Timbre(
    harmonics=(1.0, 0.5, 0.3, 0.2, 0.1),
    attack=0.01,
    decay=0.4,
    sustain=0.7,
    release=0.1,
    drive=3.0,
    gain=0.6,
)
SAX_LIKE = Timbre(
    harmonics=(1.0, 0.7, 0.45, 0.3, 0.2, 0.1),
    attack=0.03,
    decay=0.4,
    sustain=0.7,
    release=0.1,
    drive=0.8,
    gain=0.8,
)

STYLES: dict[str, Style] = {
    "pop": Style(
        tempo=(98, 124),
        verse_drums={
            "kick": "x.......x.x.....",
            "snare": "....x.......x...",
            "hat": "x.x.x.x.x.x.x.x.",
        },
        chorus_drums={
            "kick": "x.....x.x.x.....",
            "clap": "....X.......X...",
            "hat": "xoxoxoxoxoxoxoxo",
        },
        bass="pop",
        bass_timbre=BASS,
        harmony="piano",
        harmony_timbre=PIANO,
        pad_in_chorus=True,
        pad_timbre=PAD,
        lead_timbre=LEAD,
        melody_density=0.55,
        levels={"drums": 0.8, "bass": 0.7, "harmony": 0.45, "pad": 0.25, "lead": 0.45},
    ),
    "rock": Style(
        tempo=(110, 150),
        verse_drums={
            "kick": "x.....x.x.......",
            "snare": "....X.......X...",
            "hat": "x.x.x.x.x.x.x.x.",
        },
        chorus_drums={
            "kick": "x.x...x.x.x...x.",
            "snare": "....X.......X...",
            "ride": "x.x.x.x.x.x.x.x.",
        },
        kit=KitSettings(kick_start_hz=140, kick_decay=0.22, snare_decay=0.18, drive=0.5),
        bass="eighths",
        bass_timbre=ROCK_BASS,
        bass_octave=36,
        harmony="power",
        harmony_timbre=GUITAR,
        harmony_octave=43,
        lead_timbre=GUITAR_LEAD,
        lead_octave=64,
        melody_density=0.5,
        scales=("mixolydian", "minor"),
        reverb=0.1,
        levels={"drums": 0.85, "bass": 0.65, "harmony": 0.5, "lead": 0.4},
    ),
    "electronic": Style(
        tempo=(124, 128),
        verse_drums={
            "kick": "X...X...X...X...",
            "hat": "..x...x...x...x.",
            "clap": "....x.......x...",
        },
        chorus_drums={
            "kick": "X...X...X...X...",
            "clap": "....X.......X...",
            "hat": "oox.oox.oox.oox.",
            "open_hat": "..x...x...x...x.",
        },
        kit=KitSettings(kick_start_hz=180, kick_end_hz=48, kick_decay=0.3, hat_decay=0.025),
        bass="offbeat",
        bass_timbre=SYNTH_BASS,
        harmony="pad",
        harmony_timbre=PAD,
        lead_timbre=LEAD,
        lead_octave=70,
        melody_density=0.45,
        arp=True,
        arp_timbre=PLUCK,
        scales=("major", "minor"),
        reverb=0.2,
        sidechain=0.6,
        levels={"drums": 0.9, "bass": 0.85, "harmony": 0.35, "lead": 0.3, "arp": 0.5},
    ),
    "hiphop": Style(
        tempo=(85, 95),
        swing=0.6,
        swing_sixteenths=True,
        verse_drums={
            "kick": "x.....x...x.....",
            "snare": "....X.......X...",
            "hat": "x.x.x.x.x.x.x.x.",
        },
        chorus_drums={
            "kick": "x..x..x...x..x..",
            "snare": "....X.......X..o",
            "hat": "x.xox.x.x.xox.x.",
        },
        kit=KitSettings(kick_start_hz=120, kick_end_hz=45, kick_decay=0.45, snare_decay=0.12),
        bass="follow_kick",
        bass_timbre=SUB_BASS,
        bass_octave=24,
        harmony="keys",
        harmony_timbre=EPIANO,
        harmony_octave=57,
        lead_timbre=BELL,
        lead_octave=70,
        melody_density=0.3,
        sevenths=True,
        scales=("dorian", "minor"),
        reverb=0.12,
        levels={"drums": 0.95, "bass": 0.45, "harmony": 0.45, "lead": 0.35},
    ),
    "ambient": Style(
        tempo=(60, 76),
        bass="drone",
        bass_timbre=Timbre(harmonics=(1.0, 0.2), attack=1.0, decay=2.0, sustain=0.8, release=2.0),
        bass_octave=36,
        harmony="pad",
        harmony_timbre=SOFT_PAD,
        harmony_octave=55,
        lead_timbre=BELL,
        lead_octave=69,
        melody_density=0.12,
        scales=("major", "minor"),
        reverb=0.45,
        levels={"bass": 0.3, "harmony": 0.6, "lead": 0.35},
    ),
    "jazz": Style(
        tempo=(100, 160),
        swing=0.66,
        verse_drums={
            "ride": "X...x.x.X...x.x.",
            "hat": "....x.......x...",
            "kick": "o...o...o...o...",
        },
        chorus_drums={
            "ride": "X...x.x.X...x.x.",
            "hat": "....x.......x...",
            "brush": "o.o.o.o.o.o.o.o.",
            "kick": "o...o...o...o..o",
        },
        kit=KitSettings(kick_start_hz=110, kick_decay=0.2, brightness=0.7),
        bass="walking",
        bass_timbre=UPRIGHT,
        harmony="keys",
        harmony_timbre=EPIANO,
        harmony_octave=55,
        lead_timbre=SAX_LIKE,
        lead_octave=65,
        melody_density=0.6,
        sevenths=True,
        scales=("major", "dorian"),
        reverb=0.18,
        levels={"drums": 0.9, "bass": 0.75, "harmony": 0.45, "lead": 0.45},
    ),
    "lofi": Style(
        tempo=(70, 88),
        swing=0.6,
        swing_sixteenths=True,
        verse_drums={
            "kick": "x......x..x.....",
            "snare": "....x.......x...",
            "hat": "x.o.x.o.x.o.x.o.",
        },
        chorus_drums={
            "kick": "x......x..x..x..",
            "snare": "....x.......x...",
            "hat": "xoxoxoxoxoxoxoxo",
        },
        kit=KitSettings(kick_start_hz=110, kick_decay=0.3, snare_decay=0.1, brightness=0.35),
        bass="lofi",
        bass_timbre=BASS,
        bass_octave=36,
        harmony="keys",
        harmony_timbre=EPIANO,
        harmony_octave=55,
        lead_timbre=Timbre(
            harmonics=(1.0, 0.1, 0.05),
            attack=0.01,
            decay=0.5,
            sustain=0.4,
            release=0.3,
            detune_cents=12.0,
            gain=0.8,
        ),
        lead_octave=67,
        melody_density=0.35,
        sevenths=True,
        scales=("major", "dorian"),
        reverb=0.2,
        lofi=True,
        levels={"drums": 0.75, "bass": 0.65, "harmony": 0.5, "lead": 0.3},
    ),
}


@dataclass(frozen=True, slots=True)
class Mood:
    quality: str | None
    """"major", "minor", or None to let the genre and the seed decide."""
    tempo_position: float
    """Where in the genre's tempo range to sit, 0 = slowest."""
    energy: float
    """0..1: note density, drum busyness, loudness of the groove."""
    brightness: float
    """0..1: register of the melody, amount of upper partials kept."""


MOOD_PROFILES: dict[str, Mood] = {
    "neutral": Mood(None, 0.5, 0.5, 0.6),
    "happy": Mood("major", 0.7, 0.7, 0.8),
    "sad": Mood("minor", 0.2, 0.3, 0.35),
    "energetic": Mood(None, 1.0, 1.0, 0.9),
    "calm": Mood("major", 0.1, 0.15, 0.45),
    "dark": Mood("minor", 0.45, 0.6, 0.2),
}

# Words in a prompt that nudge the tempo inside the genre's range.
TEMPO_WORDS = {
    "slow": -0.3,
    "chill": -0.2,
    "relaxing": -0.25,
    "sleepy": -0.3,
    "gentle": -0.15,
    "fast": 0.3,
    "upbeat": 0.2,
    "dance": 0.2,
    "party": 0.2,
    "driving": 0.15,
}
