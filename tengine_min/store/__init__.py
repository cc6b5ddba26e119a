"""The store: SQLAlchemy Core tables (schema), opening a database (db) and the reads and writes
the core and the console share (repo). SQLite by default, PostgreSQL through TENGINE_DB_URL."""
