"""The store: peewee over one SQLite file, used only from its own thread."""
