"""Reliability campaign (issue #12): kill imagebak at random moments against the emulator, then check.

Run by hand (``python reliability/campaign.py --help``); ``tests/test_reliability_campaign.py``
runs a few trials of the same code so the mechanism cannot rot. docs/reliability.md has the figures.
"""
