"""Right after its COPY the import summarizes the new lines' ranges of the BRIN index on ``file`` (so that a night's
scans read the night) and analyzes the lines (so that matching plans for them). Both need the table's owner, and
the app connects as a role that owns nothing (README, "Database roles"): as the app, the summary was refused and
the ANALYZE skipped with a warning. This function does both as its owner (migrations run as the owner role, and
``db_roles`` gives it every routine), for that table only, with a fixed search path."""
from django.db import migrations

CREATE = """
CREATE FUNCTION reconciliation_settlement_lines_refresh() RETURNS void
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = {schema}, pg_catalog, pg_temp
    AS $$
BEGIN
    PERFORM brin_summarize_new_values('settlement_line_file_brin'::regclass);
    ANALYZE reconciliation_settlementline;
END
$$
"""


def create(apps, schema_editor):
    with schema_editor.connection.cursor() as cursor:
        cursor.execute("SELECT quote_ident(current_schema())")
        schema = cursor.fetchone()[0]
        cursor.execute(CREATE.format(schema=schema))


def drop(apps, schema_editor):
    with schema_editor.connection.cursor() as cursor:
        cursor.execute("DROP FUNCTION IF EXISTS reconciliation_settlement_lines_refresh()")


class Migration(migrations.Migration):
    dependencies = [("reconciliation", "0007_break_owner_and_notes")]

    operations = [migrations.RunPython(create, drop)]
