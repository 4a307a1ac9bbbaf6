from django import forms

from credits.pricing import TRACK_MINIMUM_PRICE_CREDITS
from tracks.engine import (
    DEFAULT_GENRE,
    GENRE_CHOICES,
    MAX_DURATION_SECONDS,
    MIN_DURATION_SECONDS,
    MOOD_CHOICES,
    NEUTRAL_MOOD,
    normalize_genre,
    normalize_mood,
)

DEFAULT_DURATION_SECONDS = 60


class GenerateTrackForm(forms.Form):
    """The generation request, from the studio page's JSON body. The labels are the
    studio form's: errors name fields by them, never by their JSON names."""

    title = forms.CharField(
        label="Title", max_length=120, error_messages={"required": "Give your track a title."}
    )
    prompt = forms.CharField(
        label="Describe it",
        max_length=1000,
        error_messages={"required": "Describe the track you want."},
    )
    genre = forms.CharField(label="Genre", required=False, max_length=32)
    mood = forms.CharField(label="Mood", required=False, max_length=32)
    duration_seconds = forms.IntegerField(
        label="Length",
        required=False,
        min_value=MIN_DURATION_SECONDS,
        max_value=MAX_DURATION_SECONDS,
        help_text=f"Seconds, {MIN_DURATION_SECONDS} to {MAX_DURATION_SECONDS}. "
        f"Leave blank for {DEFAULT_DURATION_SECONDS} seconds.",
        error_messages={
            "invalid": "Enter a whole number of seconds.",
            "min_value": f"Enter at least {MIN_DURATION_SECONDS} second.",
            "max_value": f"Enter at most {MAX_DURATION_SECONDS} seconds.",
        },
    )

    def clean_title(self) -> str:
        return self._not_blank("title")

    def clean_prompt(self) -> str:
        return self._not_blank("prompt")

    def _not_blank(self, name: str) -> str:
        value = self.cleaned_data[name].strip()
        if not value:
            raise forms.ValidationError(self.fields[name].error_messages["required"])
        return value

    def clean_genre(self) -> str:
        given = self.cleaned_data["genre"].strip()
        genre = normalize_genre(given)
        if given and genre == DEFAULT_GENRE and given.lower() != DEFAULT_GENRE:
            known = ", ".join(value for value, _ in GENRE_CHOICES)
            raise forms.ValidationError(f"Unknown genre. Choose one of: {known}.")
        return genre

    def clean_mood(self) -> str:
        given = self.cleaned_data["mood"].strip()
        mood = normalize_mood(given)
        if given and mood == NEUTRAL_MOOD and given.lower() != NEUTRAL_MOOD:
            known = ", ".join(value for value, _ in MOOD_CHOICES)
            raise forms.ValidationError(f"Unknown mood. Choose one of: {known}.")
        return mood

    def clean_duration_seconds(self) -> int:
        duration = self.cleaned_data["duration_seconds"]
        return DEFAULT_DURATION_SECONDS if duration is None else duration

    def error_fields(self) -> dict[str, str]:
        """{field: its first error}, in the form's field order."""
        return {name: errors[0] for name in self.fields if (errors := self.errors.get(name))}


class PriceForm(forms.Form):
    price_credits = forms.IntegerField(
        min_value=TRACK_MINIMUM_PRICE_CREDITS, max_value=10_000, label="Price in credits"
    )
    for_sale = forms.BooleanField(required=False)
