"""Create the database if it does not exist yet, connecting as the owner (DATABASE_OWNER_URL, else DATABASE_URL):
on a fresh machine the app's role does not exist until `manage.py db_roles` creates it."""
import os

import environ
import psycopg
from psycopg import sql

default = "postgres://postgres@127.0.0.1:5432/marketplace"
url = os.environ.get("DATABASE_OWNER_URL") or os.environ.get("DATABASE_URL", default)
config = environ.Env.db_url_config(url)
params = {"host": config["HOST"], "port": config["PORT"] or 5432, "user": config["USER"],
          "password": config["PASSWORD"] or None, "dbname": "postgres", "autocommit": True}
with psycopg.connect(**params) as conn:
    exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [config["NAME"]]).fetchone()
    if not exists:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(config["NAME"])))
        print(f"created database {config['NAME']}")
