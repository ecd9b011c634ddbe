"""CHROMM engine: geometry, data model and the optimisation-free test-time stages.

Imports no UI code. See ``core.engine.pipeline`` for the stages wired together.
"""
