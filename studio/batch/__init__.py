"""Many recordings at once: ``python -m studio batch``, one Ray task per sequence (see ``runner``)."""
