import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TF's start-up noise, not our concern
sys.path.insert(0, os.path.dirname(__file__))  # the shared test helpers (cases, tolerances)
