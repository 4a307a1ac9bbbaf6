import uuid

from django import forms

from accounts.models import User


class AdjustCreditsForm(forms.Form):
    user = forms.ModelChoiceField(
        queryset=User.objects.order_by("email"), help_text="Whose credits to adjust."
    )
    amount = forms.IntegerField(
        help_text="Positive adds a never-expiring lot; negative takes credits, "
        "soonest-expiring first. Never below zero."
    )
    reason = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3}), help_text="Required; kept in the ledger."
    )
    # Made when the form is shown, so a double submit adjusts once.
    request_id = forms.UUIDField(widget=forms.HiddenInput, initial=uuid.uuid4)

    def clean_amount(self) -> int:
        amount = self.cleaned_data["amount"]
        if amount == 0:
            raise forms.ValidationError("Enter a non-zero amount.")
        return amount

    def clean_reason(self) -> str:
        reason = self.cleaned_data["reason"].strip()
        if not reason:
            raise forms.ValidationError("A reason is required.")
        return reason
