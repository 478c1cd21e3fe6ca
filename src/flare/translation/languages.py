"""Moved to flare.languages (language codes and per-MT-family tagging); this name stays for old imports."""

from flare.languages import *  # noqa: F401,F403
from flare.languages import __all__  # noqa: F401
