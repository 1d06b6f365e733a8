"""Lets the test modules import the command-line helpers in cli_helpers.py."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
