"""Subcommands of the ``simplepose`` CLI, one module each (see ``simplepose.cli``)."""
