"""``python app.py``: the studio's entry point. Until the UI lands it reconstructs the real example
(the Pose2Sim demo: 4 calibrated cameras, two people) and prints its summary."""

from studio.cli import main

if __name__ == "__main__":
    main(["example"])
