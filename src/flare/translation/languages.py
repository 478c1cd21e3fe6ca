"""Moved to :mod:`flare.languages` (language codes and per-MT-family tagging, used by translation
and by the FLARE-MT encoder source); this name stays so that existing imports keep working."""

from flare.languages import *  # noqa: F401,F403
from flare.languages import LANGUAGES, FAMILIES, ModelCode, detect_family, known_codes, markdown_table  # noqa: F401
