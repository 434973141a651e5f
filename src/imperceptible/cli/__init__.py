"""The ``imperceptible`` command."""
