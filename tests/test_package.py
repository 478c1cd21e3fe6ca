"""What importing the package does to the process, beyond defining names."""

import logging

import flare  # noqa: F401  (installs the log filter under test)


def test_bitsandbytes_missing_kernels_warning_is_dropped_and_others_kept(caplog):
    logger = logging.getLogger("bitsandbytes.backends.cpu.ops")
    with caplog.at_level(logging.WARNING, logger=logger.name):
        logger.warning("Failed to load CPU gemm_4bit_forward from kernels-community: %s.", "no module")
        logger.warning("a different problem")
    assert [r.getMessage() for r in caplog.records] == ["a different problem"]


def test_import_flare_and_the_cli_load_no_heavy_library():
    """`import flare` and `flare --help` stay fast: torch, transformers and PEFT load when used."""
    import subprocess
    import sys

    code = ("import sys, flare, flare.cli.main; heavy = [m for m in ('torch', 'transformers', 'peft', 'accelerate') "
            "if m in sys.modules]; assert not heavy, heavy; assert flare.FlareConfig and 'torch' in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True)
