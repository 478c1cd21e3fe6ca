"""The error raised when a pretrained model cannot be provisioned."""

from flare.errors import FlareError


class ProvisioningError(FlareError, RuntimeError):
    """A model could not be downloaded, verified or converted; the message says what to do."""
