import factory

from accounts.models import User


class UserFactory(factory.django.DjangoModelFactory):
    """A user made through the same service the sign-up form uses."""

    class Meta:
        model = User

    email = factory.Sequence(lambda n: f"fan{n}@example.com")
    display_name = factory.Sequence(lambda n: f"Artist {n}")
    password = "correct horse battery staple"  # noqa: S105

    @classmethod
    def _create(cls, model_class, *args, **kwargs):
        from accounts.services import register_user

        return register_user(
            email=kwargs["email"], password=kwargs["password"], display_name=kwargs["display_name"]
        )
