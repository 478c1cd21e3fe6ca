"""What importing the package does to the process, beyond defining names."""

import logging

import flare  # noqa: F401  (installs the log filter under test)


def test_bitsandbytes_missing_kernels_warning_is_dropped_and_others_kept(caplog):
    logger = logging.getLogger("bitsandbytes.backends.cpu.ops")
    with caplog.at_level(logging.WARNING, logger=logger.name):
        logger.warning("Failed to load CPU gemm_4bit_forward from kernels-community: %s.", "no module")
        logger.warning("a different problem")
    assert [r.getMessage() for r in caplog.records] == ["a different problem"]
