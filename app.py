"""``python app.py``: start the studio (the Gradio page and its Viser viewers); ``--help`` for ports."""

import tyro

from ui.app import main

if __name__ == "__main__":
    tyro.cli(main)
