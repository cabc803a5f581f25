"""Placeholder; replaced below."""
def register_sqlite_functions():
    pass
