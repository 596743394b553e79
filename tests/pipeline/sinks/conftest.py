import sys
from pathlib import Path

# The sink tests share sinkhelpers.py (tests run with --import-mode=importlib, so no package imports).
sys.path.insert(0, str(Path(__file__).resolve().parent))
