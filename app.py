"""``python app.py``: the studio's entry point. Until the UI lands it runs the embedded example."""

from studio.cli import main

if __name__ == "__main__":
    main(["demo"])
