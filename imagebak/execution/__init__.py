"""Executions in flight: the records the journal keeps, and the state machine that moves them.

Pure data shared by the engine (which orchestrates) and the steps in ``actions`` (which act):
it imports neither of them, nor any provider.
"""
