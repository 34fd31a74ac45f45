"""Half of each page of breaks left free, so that every break a run sees again can be rewritten on its own page.

Each run rewrites every open break it sees again (``last_seen_run``; ~120,000 rows a night at ten nights of a
million lines with 1% of breaks). With that column not indexed (0010) the rewrite is HOT, adding no entry to the
table's sixteen indexes, only while the new version fits on the old one's page. At fillfactor 80 a page kept room
for about two of its seven or so rows, so most rewrites went to another page and into every index (71,250 HOT of
121,250 at night 10); at 50 every row of a page has room for its new version (120,000 of 121,250), and the pruning
of the next access frees it again. Like 0010 it holds for pages written from now on (``VACUUM FULL`` or a rewrite
applies it to the old ones)."""

from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ('reconciliation', '0013_file_twin_references'),
    ]

    operations = [
        migrations.RunSQL("ALTER TABLE reconciliation_break SET (fillfactor = 50)",
                          "ALTER TABLE reconciliation_break SET (fillfactor = 80)"),
    ]
