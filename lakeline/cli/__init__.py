"""The ``lakeline`` command line."""
