"""The local backend: directories for objects, SQLite (WAL, synchronous=FULL) for state."""
