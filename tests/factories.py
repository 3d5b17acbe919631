import factory
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group

from corpora.importing import tail_key
from corpora.models import Corpus, Event, Relation, Triple


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    password = factory.PostGenerationMethodCall("set_password", "pw-for-tests-123")

    @factory.post_generation
    def role(self, create, extracted, **kwargs):
        if extracted:
            self.groups.add(Group.objects.get_or_create(name=extracted)[0])
        if create:
            self.save()


class CorpusFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Corpus

    name = factory.Sequence(lambda n: f"corpus-{n}")


class EventFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Event
        django_get_or_create = ("text",)

    text = factory.Sequence(lambda n: f"PersonX does thing {n}")


class TripleFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Triple

    corpus = factory.SubFactory(CorpusFactory)
    head = factory.SubFactory(EventFactory)
    relation = factory.LazyFunction(lambda: Relation.objects.get(name="xNeed"))
    tail = factory.Sequence(lambda n: f"to do step {n}")
    tail_key = factory.LazyAttribute(lambda o: tail_key(o.tail))
