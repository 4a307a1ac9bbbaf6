"""Artist page versions in PostgreSQL (tracks.catalog), numbered from one sequence so
that a version is never given twice, even to a slug that changed hands."""

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('tracks', '0001_initial'),
    ]

    operations = [
        migrations.CreateModel(
            name='ArtistPage',
            fields=[
                ('slug', models.CharField(max_length=60, primary_key=True, serialize=False)),
                ('version', models.BigIntegerField()),
            ],
            options={
                'db_table': 'tracks_artist_page',
            },
        ),
        migrations.RunSQL(
            "CREATE SEQUENCE tracks_artist_page_version_seq AS bigint",
            "DROP SEQUENCE tracks_artist_page_version_seq",
        ),
    ]
