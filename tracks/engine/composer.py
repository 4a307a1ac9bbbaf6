"""Turns a spec into a score: key, tempo, form, and the notes each instrument plays.

Everything random comes from one ``numpy.random.Generator`` seeded from the spec,
so the same spec always yields the same score.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np

from .base import TrackSpec
from .choices import PREVIEW_SECONDS, normalize_genre, normalize_mood
from .styles import MOOD_PROFILES, STYLES, TEMPO_WORDS, VELOCITY, Mood, Pattern, Style
from .synth import Note
from .theory import PROGRESSIONS, Key, key_quality, pick_progression_family

STEPS_PER_BAR = 16


@dataclass(frozen=True, slots=True)
class Section:
    kind: str
    """intro, verse, chorus, bridge or outro."""
    start_bar: int
    bars: int
    chords: tuple[int, ...]
    """Root scale degree of the chord in each bar."""


@dataclass(frozen=True, slots=True)
class Hit:
    start: float
    drum: str
    velocity: float


@dataclass(slots=True)
class Score:
    genre: str
    mood: str
    style: Style
    profile: Mood
    key: Key
    tempo_bpm: int
    duration: float
    sections: list[Section]
    preview_start: float
    parts: dict[str, list[Note]] = field(default_factory=dict)
    hits: list[Hit] = field(default_factory=list)

    @property
    def beat_seconds(self) -> float:
        return 60.0 / self.tempo_bpm


class Grid:
    """Maps (bar, 16th step) to seconds, applying swing to off-beats."""

    def __init__(self, bpm: int, swing: float, sixteenths: bool) -> None:
        self.step_seconds = 60.0 / bpm / 4
        self.unit = 2 if sixteenths else 4
        self.swing = swing

    def time(self, bar: int, step: float) -> float:
        pair, pos = divmod(step, self.unit)
        half = self.unit / 2
        swung = self.swing * self.unit
        if pos < half:
            pos = pos * swung / half
        else:
            pos = swung + (pos - half) * (self.unit - swung) / half
        return (bar * STEPS_PER_BAR + pair * self.unit + pos) * self.step_seconds

    def span(self, bar: int, step: float, length: float) -> tuple[float, float]:
        start = self.time(bar, step)
        return start, self.time(bar, step + length) - start


def compose(spec: TrackSpec, rng: np.random.Generator) -> Score:
    genre = normalize_genre(spec.genre)
    mood = normalize_mood(spec.mood)
    style = STYLES[genre]
    profile = MOOD_PROFILES[mood]

    tempo = _pick_tempo(style, profile, spec.prompt, rng)
    key = _pick_key(genre, mood, style, profile, rng)
    family = PROGRESSIONS[pick_progression_family(genre, key_quality(key.scale))]
    progressions = {kind: _choice(rng, family[kind]) for kind in ("verse", "chorus", "bridge")}
    if progressions["chorus"] == progressions["verse"]:
        progressions["chorus"] = _choice(rng, family["chorus"])

    bar_seconds = 4 * 60.0 / tempo
    n_bars = math.ceil(spec.duration_seconds / bar_seconds)
    sections = _plan_sections(n_bars, bar_seconds, progressions)

    first_chorus = next((s for s in sections if s.kind == "chorus"), None)
    chorus_at = first_chorus.start_bar * bar_seconds if first_chorus else 0.0
    preview_start = max(0.0, min(chorus_at, spec.duration_seconds - PREVIEW_SECONDS))

    score = Score(
        genre=genre,
        mood=mood,
        style=style,
        profile=profile,
        key=key,
        tempo_bpm=tempo,
        duration=float(spec.duration_seconds),
        sections=sections,
        preview_start=preview_start,
    )
    grid = Grid(tempo, style.swing, style.swing_sixteenths)
    score.hits = _drums(score, grid, rng)
    score.parts["bass"] = _bass(score, grid, rng)
    score.parts["harmony"] = _harmony(score, grid, rng)
    score.parts["pad"] = _pad(score, grid)
    score.parts["lead"] = _melody(score, grid, rng)
    score.parts["arp"] = _arp(score, grid, rng)
    return score


def _choice(rng: np.random.Generator, options: tuple) -> tuple:
    return options[int(rng.integers(len(options)))]


def _pick_tempo(style: Style, profile: Mood, prompt: str, rng: np.random.Generator) -> int:
    words = set(prompt.lower().replace(",", " ").replace(".", " ").split())
    nudge = sum(v for word, v in TEMPO_WORDS.items() if word in words)
    position = float(np.clip(profile.tempo_position + nudge + rng.uniform(-0.12, 0.12), 0, 1))
    low, high = style.tempo
    return int(round(low + (high - low) * position))


def _pick_key(genre: str, mood: str, style: Style, profile: Mood, rng: np.random.Generator) -> Key:
    quality = profile.quality
    if quality is None:
        # Club and beat genres lean minor; the rest lean major.
        p_minor = 0.65 if genre in ("electronic", "hiphop", "rock") else 0.35
        quality = "minor" if rng.random() < p_minor else "major"
    scale = style.scales[0 if quality == "major" else 1]
    if mood == "dark":
        scale = "phrygian" if rng.random() < 0.35 else "minor"
    return Key(tonic=int(rng.integers(12)), scale=scale)


def _plan_sections(
    n_bars: int, bar_seconds: float, progressions: dict[str, tuple[int, ...]]
) -> list[Section]:
    """Lay out intro/verse/chorus/bridge/outro to fill ``n_bars`` bars exactly."""
    block = 8 if bar_seconds <= 2.6 else 4
    plan: list[tuple[str, int]] = []
    if n_bars < 2 * block:
        # Too short for a song form: get to the full groove quickly.
        verse = n_bars // 2 if n_bars >= 4 else 0
        plan = [("verse", verse), ("chorus", n_bars - verse)]
    else:
        intro = 2
        outro = 2 if n_bars >= 16 else 0
        plan.append(("intro", intro))
        middle = n_bars - intro - outro
        # A pop form; past its end (long, fast tracks) verses and choruses alternate.
        form = ("verse", "chorus", "verse", "chorus", "bridge", "chorus", "chorus")
        i = 0
        while middle > 0:
            bars = min(block, middle)
            kind = form[i] if i < len(form) else ("verse", "chorus")[i % 2]
            plan.append((kind, bars))
            middle -= bars
            i += 1
        if outro:
            plan.append(("outro", outro))

    sections = []
    bar = 0
    for kind, bars in plan:
        if bars <= 0:
            continue
        if kind == "outro":
            chords = (0,) * bars
        else:
            prog = progressions["verse" if kind == "intro" else kind]
            chords = tuple(prog[i % len(prog)] for i in range(bars))
        sections.append(Section(kind, bar, bars, chords))
        bar += bars
    return sections


def _bars(score: Score) -> Iterator[tuple[Section, int, int]]:
    """Every bar of the piece as (section, absolute bar, index within the section)."""
    for section in score.sections:
        for i in range(section.bars):
            yield section, section.start_bar + i, i


def _octave_base(target: int, tonic: int) -> int:
    """A C-octave MIDI base such that the tonic in it lies near ``target``."""
    return 12 * round((target - tonic) / 12)


# --- Drums -----------------------------------------------------------------------------


def _drum_pattern(score: Score, section: Section) -> Pattern | None:
    style = score.style
    if style.verse_drums is None or section.kind == "outro":
        return None
    if section.kind == "intro":
        # Electronic intros keep the kick going; others build in with hats only.
        if score.genre == "electronic":
            return {"kick": style.verse_drums["kick"]}
        hats = {k: v for k, v in style.verse_drums.items() if k in ("hat", "ride")}
        return hats or None
    if section.kind == "chorus":
        return style.chorus_drums or style.verse_drums
    return style.verse_drums


def _drums(score: Score, grid: Grid, rng: np.random.Generator) -> list[Hit]:
    energy = score.profile.energy
    loud = 0.7 + 0.3 * energy
    crash = score.genre in ("pop", "rock", "electronic")
    # Tight genres stay on the grid; the others get a few milliseconds of human feel.
    jitter = 0.006 if score.genre in ("jazz", "lofi", "hiphop") else 0.0015
    hits: list[Hit] = []
    sections = score.sections
    for index, section in enumerate(sections):
        pattern = _drum_pattern(score, section)
        if pattern is None:
            continue
        next_kind = sections[index + 1].kind if index + 1 < len(sections) else None
        for i in range(section.bars):
            bar = section.start_bar + i
            fill = i == section.bars - 1 and next_kind == "chorus" and energy >= 0.4
            for drum, line in pattern.items():
                for step, char in enumerate(line):
                    vel = VELOCITY.get(char)
                    if vel is None and energy > 0.85 and drum == "hat" and section.kind == "chorus":
                        vel = VELOCITY["o"]
                    if vel is None or (energy < 0.3 and char == "o"):
                        continue
                    if fill and step >= 12 and drum in ("kick", "hat", "open_hat"):
                        continue
                    hits.append(_hit(grid, bar, step, drum, vel * loud, rng, jitter))
            if fill:
                snare = "snare" if "snare" in pattern else "clap" if "clap" in pattern else None
                if snare:
                    for step in range(12, 16):
                        vel = (0.45 + 0.12 * (step - 12)) * loud
                        hits.append(_hit(grid, bar, step, snare, vel, rng, jitter))
            if crash and i == 0 and section.kind == "chorus":
                hits.append(Hit(grid.time(bar, 0), "crash", 0.6 * loud))
    return hits


def _hit(
    grid: Grid, bar: int, step: int, drum: str, vel: float, rng: np.random.Generator, jitter: float
) -> Hit:
    start = grid.time(bar, step) + float(rng.uniform(-jitter, jitter))
    return Hit(max(0.0, start), drum, vel * float(rng.uniform(0.88, 1.0)))


# --- Bass ------------------------------------------------------------------------------


def _kick_steps(score: Score, section: Section) -> list[int]:
    pattern = _drum_pattern(score, section) or {}
    line = pattern.get("kick", "")
    steps = [i for i, c in enumerate(line) if c in "Xx"]
    return steps or [0, 8]


def _bass(score: Score, grid: Grid, rng: np.random.Generator) -> list[Note]:
    key, style = score.key, score.style
    base = _octave_base(style.bass_octave, key.tonic)
    notes: list[Note] = []
    bars = list(_bars(score))
    for n, (section, bar, i) in enumerate(bars):
        if section.kind == "intro" and score.genre != "ambient":
            continue
        degree = section.chords[i]
        root = key.degree_to_midi(degree, base)
        fifth = key.degree_to_midi(degree + 4, base)
        third = key.degree_to_midi(degree + 2, base)
        if n + 1 < len(bars):
            next_section, _, next_i = bars[n + 1]
            next_root = key.degree_to_midi(next_section.chords[next_i], base)
        else:
            next_root = root
        kind = "drone" if section.kind == "outro" else style.bass
        events: list[tuple[float, float, int, float]]  # step, length, midi, velocity
        if kind == "drone":
            events = [(0, 16, root, 0.9)]
        elif kind == "eighths":
            events = [(s, 1.4, root, 0.95 if s % 4 == 0 else 0.8) for s in range(0, 16, 2)]
            if rng.random() < 0.5:
                events[-1] = (14, 1.4, fifth, 0.85)
        elif kind == "offbeat":
            events = [
                (s, 1.6, root + (12 if s == 10 and rng.random() < 0.5 else 0), 0.9)
                for s in (2, 6, 10, 14)
            ]
        elif kind == "walking":
            approach = next_root + (1 if rng.random() < 0.5 else -1)
            middle = key.degree_to_midi(degree + int(rng.choice([1, 3, 5])), base)
            events = [
                (0, 3.5, root, 0.95),
                (4, 3.5, third if rng.random() < 0.6 else fifth, 0.8),
                (8, 3.5, middle, 0.85),
                (12, 3.5, approach, 0.8),
            ]
        elif kind == "lofi":
            events = [(0, 6, root, 0.95), (7, 2.5, fifth, 0.75), (10, 5, root, 0.85)]
        elif kind in ("follow_kick", "pop"):
            steps = _kick_steps(score, section)
            events = []
            for j, s in enumerate(steps):
                end = steps[j + 1] if j + 1 < len(steps) else 16
                length = (end - s) * (0.9 if kind == "follow_kick" else 0.7)
                pitch = root
                if kind == "pop" and j == len(steps) - 1 and len(steps) > 2:
                    pitch = fifth
                events.append((s, length, pitch, 0.95 if s == 0 else 0.8))
        else:  # "root": on the one and the three
            events = [(0, 7, root, 0.95), (8, 7, root, 0.85)]
        for step, length, midi, vel in events:
            start, dur = grid.span(bar, step, length)
            notes.append(Note(start, dur, midi, vel))
    return notes


# --- Chords ----------------------------------------------------------------------------


def _voicing(score: Score, degree: int, center: int) -> list[int]:
    """Chord tones folded into the octave around ``center``: close voice leading for free."""
    key = score.key
    size = 4 if score.style.sevenths else 3
    notes = []
    for d in key.chord(degree, size):
        midi = key.degree_to_midi(d, 0)
        midi = center - 6 + (midi - (center - 6)) % 12
        notes.append(midi)
    return sorted(notes)


COMP_PATTERNS: tuple[tuple[tuple[float, float], ...], ...] = (
    ((0, 3), (6, 4), (10, 2)),
    ((0, 8), (10, 6)),
    ((2, 2), (6, 6), (14, 2)),
    ((0, 3), (6, 10)),
)


def _harmony(score: Score, grid: Grid, rng: np.random.Generator) -> list[Note]:
    style, key = score.style, score.key
    center = style.harmony_octave + 5
    comp = {kind: _choice(rng, COMP_PATTERNS) for kind in ("intro", "verse", "chorus", "bridge")}
    notes: list[Note] = []
    for section, bar, i in _bars(score):
        degree = section.chords[i]
        rhythm: tuple[tuple[float, float], ...]
        vel = 0.85 if section.kind == "chorus" else 0.7
        if style.harmony == "power":
            root = key.degree_to_midi(degree, _octave_base(style.harmony_octave, key.tonic))
            chord = [root, root + 7, root + 12]
            if section.kind == "verse":
                rhythm = tuple((s, 1.0) for s in range(0, 16, 2))
                vel = 0.6
            elif section.kind in ("intro", "outro"):
                rhythm = ((0, 16),)
            else:
                rhythm = ((0, 7.5), (8, 5.5), (14, 1.5))
        else:
            chord = _voicing(score, degree, center)
            if style.harmony == "pad" or section.kind == "outro":
                rhythm = ((0, 15.5),)
            elif style.harmony == "piano":
                if section.kind == "chorus":
                    rhythm = ((0, 2.5), (3, 2.5), (6, 1.5), (8, 2.5), (11, 2.5), (14, 1.5))
                else:
                    rhythm = tuple((s, 3.0) for s in (0, 4, 8, 12))
            else:  # keys: syncopated comping
                rhythm = comp.get(section.kind, comp["verse"])
        for step, length in rhythm:
            start, dur = grid.span(bar, step, length)
            accent = 1.0 if step % 4 == 0 else 0.85
            notes.extend(Note(start, dur, midi, vel * accent) for midi in chord)
    return notes


def _pad(score: Score, grid: Grid) -> list[Note]:
    if not score.style.pad_in_chorus:
        return []
    notes = []
    for section, bar, i in _bars(score):
        if section.kind != "chorus":
            continue
        start, dur = grid.span(bar, 0, 15.5)
        for midi in _voicing(score, section.chords[i], score.style.harmony_octave + 12):
            notes.append(Note(start, dur, midi, 0.7))
    return notes


# --- Melody ----------------------------------------------------------------------------

# Rhythm cells as (onset, length) in 16th steps from the start of a beat.
CELLS: dict[str, tuple[tuple[int, int], ...]] = {
    "rest": (),
    "quarter": ((0, 4),),
    "eighths": ((0, 2), (2, 2)),
    "dotted": ((0, 3), (3, 1)),
    "offbeat": ((2, 2),),
    "sixteenths": ((0, 1), (1, 1), (2, 1), (3, 1)),
    "half": ((0, 8),),
    "whole": ((0, 16),),
}
CELL_BEATS = {"half": 2, "whole": 4}


def _cell_weights(density: float) -> dict[str, float]:
    d = float(np.clip(density, 0.02, 1.0))
    return {
        "rest": 1.2 - d,
        "quarter": 0.9,
        "eighths": 0.3 + 1.2 * d,
        "dotted": 0.2 + 0.5 * d,
        "offbeat": 0.3,
        "sixteenths": max(0.0, d - 0.55),
        "half": 1.0 - 0.7 * d,
        "whole": max(0.0, 0.6 - d),
    }


@dataclass(frozen=True, slots=True)
class Motif:
    """Two bars of melody: (step from phrase start, length, scale degree)."""

    notes: tuple[tuple[int, int, int], ...]


def _make_motif(rng: np.random.Generator, density: float, lift: int) -> Motif:
    weights = _cell_weights(density)
    names = list(weights)
    p = np.array([weights[n] for n in names])
    p /= p.sum()
    rhythm: list[tuple[int, int]] = []
    beat = 0
    while beat < 8:
        name = names[int(rng.choice(len(names), p=p))]
        beats = CELL_BEATS.get(name, 1)
        if beat + beats > 8 or (beat == 0 and name == "rest"):
            name, beats = "quarter", 1
        rhythm.extend((beat * 4 + on, length) for on, length in CELLS[name])
        beat += beats
    if len(rhythm) < 2:
        rhythm.append((8, 4))
        rhythm.sort()
    # Follow a phrase shape (an arch, a fall, a rise or a dip) with a little randomness,
    # so that melodies move purposefully rather than wander around one note.
    start = int(rng.choice([0, 2, 4])) + lift
    span = int(rng.integers(2, 5))
    shape = int(rng.integers(4))
    last = max(len(rhythm) - 1, 1)
    notes = []
    for j, (step, length) in enumerate(rhythm):
        x = j / last
        contour = (np.sin(np.pi * x), -x, x, -np.sin(np.pi * x))[shape]
        degree = start + round(span * contour) + int(rng.choice([-1, 0, 0, 1]))
        notes.append((step, length, int(np.clip(degree, -3 + lift, 7 + lift))))
    return Motif(tuple(notes))


def _vary(motif: Motif, rng: np.random.Generator) -> Motif:
    """Same rhythm, new ending: the "answer" to the motif's "question"."""
    notes = list(motif.notes)
    for j in range(max(0, len(notes) - 2), len(notes)):
        step, length, degree = notes[j]
        notes[j] = (step, length, degree + int(rng.choice([-2, -1, 1, 2])))
    return Motif(tuple(notes))


def _snap_to_chord(degree: int, root: int, sevenths: bool) -> int:
    tones = (0, 2, 4, 6) if sevenths else (0, 2, 4)
    for offset in (0, -1, 1, -2, 2):
        if (degree + offset - root) % 7 in tones:
            return degree + offset
    return degree


def _melody(score: Score, grid: Grid, rng: np.random.Generator) -> list[Note]:
    style, profile, key = score.style, score.profile, score.key
    density = style.melody_density * (0.6 + 0.8 * profile.energy)
    register = style.lead_octave + (
        3 if profile.brightness > 0.7 else -4 if profile.brightness < 0.3 else 0
    )
    base = _octave_base(register, key.tonic)
    motifs: dict[str, tuple[Motif, Motif]] = {}
    for kind, d, lift in (
        ("verse", density, 0),
        ("chorus", density + 0.15, 2),
        ("bridge", density - 0.1, 1),
    ):
        motif = _make_motif(rng, d, lift)
        motifs[kind] = (motif, _vary(motif, rng))
    singing = {"verse", "chorus", "bridge"}
    if score.genre == "ambient":
        singing.add("intro")
    notes: list[Note] = []
    for section in score.sections:
        if section.kind not in singing:
            continue
        question, answer = motifs.get(section.kind, motifs["verse"])
        for pair in range(0, section.bars, 2):
            motif = question if (pair // 2) % 2 == 0 else answer
            for step, length, degree in motif.notes:
                i = pair + step // STEPS_PER_BAR
                if i >= section.bars:
                    break
                bar_step = step % STEPS_PER_BAR
                root = section.chords[i]
                strong = bar_step % 8 == 0 or length >= 4
                if strong:
                    degree = _snap_to_chord(degree, root, style.sevenths)
                last = i == section.bars - 1 and motif.notes[-1][0] == step
                if last:
                    # Land the phrase on the chord root, held to the bar line.
                    degree = root + 7 * round((degree - root) / 7)
                    length = STEPS_PER_BAR - bar_step
                start, dur = grid.span(section.start_bar + i, bar_step, length * 0.92)
                vel = (0.95 if bar_step % 4 == 0 else 0.8) * float(rng.uniform(0.9, 1.0))
                notes.append(Note(start, dur, key.degree_to_midi(degree, base), vel))
    return notes


def _arp(score: Score, grid: Grid, rng: np.random.Generator) -> list[Note]:
    if not score.style.arp:
        return []
    kinds = {"chorus", "bridge", "intro"}
    if score.profile.energy >= 0.6:
        kinds.add("verse")
    updown = rng.random() < 0.5
    notes = []
    for section, bar, i in _bars(score):
        if section.kind not in kinds:
            continue
        chord = _voicing(score, section.chords[i], score.style.harmony_octave + 12)
        cycle = chord + [m + 12 for m in chord]
        if updown:
            cycle = cycle + cycle[-2:0:-1]
        for step in range(16):
            start, dur = grid.span(bar, step, 0.8)
            vel = 0.9 if step % 4 == 0 else 0.65
            notes.append(Note(start, dur, cycle[(bar * 16 + step) % len(cycle)], vel))
    return notes
