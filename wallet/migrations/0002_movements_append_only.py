"""Wallet movements are the wallet's history: PostgreSQL refuses to change or delete them."""
from django.db import migrations

FORWARD = r"""
CREATE FUNCTION wallet_movement_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'wallet movements are append-only: % refused', TG_OP
        USING ERRCODE = 'integrity_constraint_violation';
END $$;
CREATE TRIGGER wallet_movement_append_only BEFORE UPDATE OR DELETE ON wallet_walletmovement
    FOR EACH ROW EXECUTE FUNCTION wallet_movement_refuse_change();
"""

BACKWARD = r"""
DROP TRIGGER wallet_movement_append_only ON wallet_walletmovement;
DROP FUNCTION wallet_movement_refuse_change();
"""


class Migration(migrations.Migration):
    dependencies = [("wallet", "0001_initial")]
    operations = [migrations.RunSQL(FORWARD, BACKWARD)]
